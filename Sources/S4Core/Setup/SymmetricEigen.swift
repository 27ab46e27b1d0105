/// Eigen-decomposition of a real symmetric matrix by cyclic Jacobi rotations (Double).
///
/// Used once at initialisation (HiPPO-LegS diagonalisation), where the matrices are small
/// (2N × 2N) and accuracy matters more than speed: Jacobi is backward stable and returns
/// orthonormal eigenvectors even for clustered eigenvalues.
struct SymmetricEigen {
    /// Eigenvalues in ascending order.
    let values: [Double]
    /// Column-major eigenvectors: column `k` (`vectors[k * n ..< (k + 1) * n]`) belongs to `values[k]`.
    let vectors: [Double]

    /// - Parameter matrix: row-major n × n symmetric matrix.
    init(symmetric matrix: [Double], size n: Int, maxSweeps: Int = 100) {
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        var total = 0.0
        for value in matrix { total += value * value }
        for _ in 0..<maxSweeps {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n { off += a[p * n + q] * a[p * n + q] } }
            // Converged when the off-diagonal part is at rounding level relative to the matrix.
            if off <= 1e-30 * total { break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n {
                    let apq = a[p * n + q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    // A ← Jᵀ A J on rows/columns p, q.
                    for k in 0..<n {
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        let order = (0..<n).sorted { a[$0 * n + $0] < a[$1 * n + $1] }
        values = order.map { a[$0 * n + $0] }
        var columns = [Double](repeating: 0, count: n * n)
        for (k, j) in order.enumerated() {
            for i in 0..<n { columns[k * n + i] = v[i * n + j] }
        }
        vectors = columns
    }
}
