import S4Service
import Testing

/// The parts of a batch job's file list: disjoint, together the whole list, in its order.
@Suite struct FileListTests {
    @Test(arguments: [1, 2, 3, 7, 10, 11])
    func partsAreDisjointCoverTheListAndKeepItsOrder(count: Int) throws {
        let items = Array(0..<10)
        var seen: [Int] = []
        for index in 1...count {
            let part = try #require(Shard("\(index)/\(count)")).select(items)
            #expect(part == part.sorted())
            #expect(part.allSatisfy { $0 % count == index - 1 })
            seen += part
        }
        #expect(seen.sorted() == items)
    }

    @Test func partSizesDifferByAtMostOne() throws {
        let sizes = try (1...4).map { try #require(Shard("\($0)/4")).select(Array(0..<10)).count }
        #expect(sizes == [3, 3, 2, 2])
    }

    @Test(arguments: ["0/3", "4/3", "3", "1/0", "-1/2", "a/b", "1/2/3", "", "/", " 1/2"])
    func badShardsAreRefused(text: String) {
        #expect(Shard(text) == nil)
    }

    @Test func listsSkipBlankLinesAndReadCRLF() {
        #expect(FileList.parse("a.wav\n\n  \nb c.flac\r\n\t\nd.wav") == ["a.wav", "b c.flac", "d.wav"])
        #expect(FileList.parse("").isEmpty)
    }

    @Test func aMissingListIsNamed() {
        #expect(throws: FileListError.self) { try FileList.read("/nonexistent/list.txt") }
        do {
            _ = try FileList.read("/nonexistent/list.txt")
        } catch {
            #expect(error.description == "/nonexistent/list.txt: cannot read the file list: No such file or directory")
        }
    }
}
