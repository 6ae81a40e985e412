import Runner
import ServiceLifecycle

/// The agent as a service of the server's ServiceGroup: runs its containers, and on graceful
/// shutdown (SIGTERM/SIGINT) stops taking calls, lets running ones finish (bounded), and ends
/// every container before the process exits.
public struct AgentService: Service {
    let agent: Agent

    public init(agent: Agent) { self.agent = agent }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await agent.run() }
            group.addTask {
                try? await gracefulShutdown()
                await agent.shutdown()
            }
            await group.waitForAll()
        }
    }
}
