import Runner
import ServiceLifecycle

/// The agent as a service of the server's ServiceGroup: runs its containers, and on graceful
/// shutdown (SIGTERM/SIGINT) stops taking calls, lets running ones finish (bounded), and ends
/// every container before the process exits. It also hosts the consumer of detached calls,
/// which stops claiming at shutdown; the agent's grace period bounds its running calls, and
/// those that had not started go back to the queue.
public struct AgentService: Service {
    let agent: Agent
    let detachedCalls: AsyncCallConsumer?

    public init(agent: Agent, detachedCalls: AsyncCallConsumer? = nil) {
        self.agent = agent
        self.detachedCalls = detachedCalls
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await agent.run() }
            if let detachedCalls { group.addTask { await detachedCalls.run() } }
            group.addTask {
                try? await gracefulShutdown()
                detachedCalls?.stop()
                await agent.shutdown()
            }
            await group.waitForAll()
        }
    }
}
