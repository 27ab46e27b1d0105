/// Mean pooling over time as a running sum (Double, so long windows lose nothing): the same
/// result whether the window arrives at once or sample by sample.
struct MeanPool {
    private var sum: [Double]
    private(set) var count = 0

    init(width: Int) { sum = Array(repeating: 0, count: width) }

    mutating func add(_ rows: UnsafePointer<Float>, rows count: Int) {
        let h = sum.count
        for t in 0..<count {
            let row = rows + t &* h
            for j in 0..<h { sum[j] += Double(row[j]) }
        }
        self.count += count
    }

    mutating func reset() {
        for j in sum.indices { sum[j] = 0 }
        count = 0
    }

    func mean() -> [Float] {
        let n = Double(max(count, 1))
        return sum.map { Float($0 / n) }
    }
}
