import GRPCCore
import Tracing

/// Makes the load balancer's trace context (W3C `traceparent` in the stream's metadata) the
/// parent of what the stream runs, so a traced node's call spans join the LB's trace. It is
/// installed only when the node traces.
struct TraceContextInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        var extracted = ServiceContext.current ?? .topLevel
        InstrumentationSystem.instrument.extract(request.metadata, into: &extracted, using: MetadataExtractor())
        let parent = extracted
        var response = try await ServiceContext.$current.withValue(parent) { try await next(request, context) }
        // The handler runs in the response's producer, after this returns: it gets the context too.
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in try await ServiceContext.$current.withValue(parent) { try await producer(writer) } }
            response.accepted = .success(contents)
        }
        return response
    }
}

/// Reads propagation keys from gRPC metadata (its keys are lower case already).
struct MetadataExtractor: Extractor {
    func extract(key: String, from metadata: Metadata) -> String? {
        for value in metadata[stringValues: key.lowercased()] { return value }
        return nil
    }
}
