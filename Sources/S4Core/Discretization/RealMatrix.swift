import COpenBLAS

/// Small dense real matrices (row-major, Double) for set-up work: powers of Ā and r × r inverses.
enum RealMatrix {
    /// Row-major product of two n × n matrices through BLAS.
    static func multiply(_ a: [Double], _ b: [Double], size n: Int) -> [Double] {
        var result = [Double](repeating: 0, count: n * n)
        let dimension = Int32(n)
        cblas_dgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, dimension, dimension, dimension,
            1, a, dimension, b, dimension, 0, &result, dimension)
        return result
    }

    /// Mᵏ by repeated squaring: O(n³ log k).
    static func power(_ matrix: [Double], size n: Int, exponent k: Int) -> [Double] {
        var result = [Double](repeating: 0, count: n * n)
        for i in 0..<n { result[i * n + i] = 1 }
        var base = matrix
        var remaining = k
        while remaining > 0 {
            if remaining & 1 == 1 { result = multiply(result, base, size: n) }
            remaining >>= 1
            if remaining > 0 { base = multiply(base, base, size: n) }
        }
        return result
    }

    /// Inverse by Gauss–Jordan elimination with partial pivoting (for the tiny r × r Woodbury matrix).
    static func inverse(_ matrix: [Double], size n: Int) -> [Double] {
        var a = matrix
        var inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n { inv[i * n + i] = 1 }
        for col in 0..<n {
            var pivot = col
            for row in col..<n where abs(a[row * n + col]) > abs(a[pivot * n + col]) { pivot = row }
            if pivot != col {
                for k in 0..<n {
                    a.swapAt(col * n + k, pivot * n + k)
                    inv.swapAt(col * n + k, pivot * n + k)
                }
            }
            let scale = 1 / a[col * n + col]
            for k in 0..<n { a[col * n + k] *= scale; inv[col * n + k] *= scale }
            for row in 0..<n where row != col {
                let factor = a[row * n + col]
                if factor == 0 { continue }
                for k in 0..<n {
                    a[row * n + k] -= factor * a[col * n + k]
                    inv[row * n + k] -= factor * inv[col * n + k]
                }
            }
        }
        return inv
    }
}
