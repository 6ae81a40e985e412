import Foundation
import GRPCCore
import RunnerGRPC
import Testing

/// The generated RunnerProtocol code against what Fn's LB puts on the wire: the method paths
/// (no proto package) and the field numbers of the messages a call exchanges.
struct WireContractTests {
    @Test func methodPathsHaveNoPackageAsFnsLoadBalancerCallsThem() {
        #expect(RunnerProtocol.Method.Engage.descriptor.fullyQualifiedMethod == "RunnerProtocol/Engage")
        #expect(RunnerProtocol.Method.Status.descriptor.fullyQualifiedMethod == "RunnerProtocol/Status")
        #expect(RunnerProtocol.Method.Status2.descriptor.fullyQualifiedMethod == "RunnerProtocol/Status2")
        #expect(RunnerProtocol.Method.ConfigureRunner.descriptor.fullyQualifiedMethod == "RunnerProtocol/ConfigureRunner")
        #expect(RunnerProtocol.Method.StreamLogs.descriptor.fullyQualifiedMethod == "RunnerProtocol/StreamLogs")
    }

    @Test func aTryCallIsFieldOneOfClientMsgWithItsJSONAndSlotHashAsFieldsOneAndTwo() throws {
        var msg = ClientMsg()
        msg.try = TryCall.with {
            $0.modelsCallJson = "{}"
            $0.slotHashID = "ab"
        }
        // ClientMsg.try: field 1, length-delimited (0x0a), 8 bytes; inside, fields 1 and 2.
        let expected: [UInt8] = [0x0a, 0x08, 0x0a, 0x02, 0x7b, 0x7d, 0x12, 0x02, 0x61, 0x62]
        #expect(Array(try msg.serializedBytes() as [UInt8]) == expected)
        #expect(try ClientMsg(serializedBytes: expected).try.slotHashID == "ab")
    }

    @Test func aBusyAnswerIsFinishedWithErrorCode503AsFieldThreeOfRunnerMsg() throws {
        var msg = RunnerMsg()
        msg.finished = CallFinished.with { $0.errorCode = 503 }
        // RunnerMsg.finished: field 3 (0x1a), 3 bytes; CallFinished.errorCode: field 3 varint 503.
        #expect(Array(try msg.serializedBytes() as [UInt8]) == [0x1a, 0x03, 0x18, 0xf7, 0x03])
    }

    @Test func aResponseHeadIsHttpMetaAtFieldOneHundredAndDataFramesCarryEofAsFieldTwo() throws {
        var start = RunnerMsg()
        start.resultStart = CallResultStart.with { $0.http = HttpRespMeta.with { $0.statusCode = 202 } }
        // result_start: field 1; http: field 100 (0xa2 0x06); status_code: field 1 varint 202.
        #expect(Array(try start.serializedBytes() as [UInt8]) == [0x0a, 0x06, 0xa2, 0x06, 0x03, 0x08, 0xca, 0x01])
        var frame = ClientMsg()
        frame.data = DataFrame.with { $0.eof = true }
        #expect(Array(try frame.serializedBytes() as [UInt8]) == [0x12, 0x02, 0x10, 0x01])
    }
}
