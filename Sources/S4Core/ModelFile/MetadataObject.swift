import Foundation

/// Typed, checked access to one JSON object of the metadata; `path` prefixes the keys it names.
struct MetadataObject {
    let object: [String: Any]
    let path: String

    init(_ object: [String: Any], path: String) { self.object = object; self.path = path }

    func field<T>(_ key: String, as _: T.Type) throws(ModelFileError) -> T {
        guard let value = object[key] else { throw .missingMetadata(path + key) }
        guard let typed = value as? T else { throw .invalidMetadata("\(path)\(key) has the wrong type") }
        return typed
    }

    func number(_ key: String) throws(ModelFileError) -> Double {
        let value = try field(key, as: NSNumber.self).doubleValue
        guard value.isFinite else { throw .invalidMetadata("\(path)\(key) is not finite") }
        return value
    }

    func integer(_ key: String) throws(ModelFileError) -> Int {
        let value = try number(key)
        guard value == value.rounded(), abs(value) < 1e9 else { throw .invalidMetadata("\(path)\(key) must be an integer") }
        return Int(value)
    }

    func choice<E: RawRepresentable>(_ key: String, _: E.Type) throws(ModelFileError) -> E where E.RawValue == String {
        let raw = try field(key, as: String.self)
        guard let value = E(rawValue: raw) else { throw .invalidMetadata("\(path)\(key) \"\(raw)\" is not supported") }
        return value
    }
}
