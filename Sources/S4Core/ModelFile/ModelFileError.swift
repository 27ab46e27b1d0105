/// Why a model file was refused. Each message names the problem and, where there is one, the tensor.
public enum ModelFileError: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case malformed(String)
    case missingMetadata(String)
    case invalidMetadata(String)
    case missingTensor(String)
    case wrongShape(String, found: [Int], expected: [Int])
    case nonFinite(String, index: Int)
    case unstable(String, index: Int, value: Double)
    case nonFiniteOutput(String)

    public var description: String {
        switch self {
        case .truncated(let why): "model file is truncated: \(why)"
        case .malformed(let why): "model file is malformed: \(why)"
        case .missingMetadata(let key): "model metadata lacks \(key)"
        case .invalidMetadata(let why): "model metadata is invalid: \(why)"
        case .missingTensor(let name): "model file lacks tensor \(name)"
        case .wrongShape(let name, let found, let expected): "tensor \(name) has shape \(found), expected \(expected)"
        case .nonFinite(let name, let index): "tensor \(name) contains NaN or infinity (element \(index))"
        case .unstable(let name, let index, let value):
            "tensor \(name) has Re Λ = \(value) ≥ 0 at element \(index): the state space model would be unstable"
        case .nonFiniteOutput(let what): "model computes NaN or infinity: \(what)"
        }
    }
}
