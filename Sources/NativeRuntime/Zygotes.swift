import Logging
import Runner
import RunnerOS
import Synchronization

/// The node's zygote templates, one per fn that opted in (`fnrunner.io/zygote: python`): a
/// template serves exactly one function definition, and a changed definition (seen at the
/// next start, or told by the API when the fn is saved or deleted) retires it.
///
/// A zygote only ever changes how fast an instance starts. When no template can be had (it
/// failed to start or to fork, or it ended), the start falls back to a normal container, with
/// a warning in the log and `fn_zygote_fallbacks_total`; a definition whose template failed is
/// not tried again for `retryAfter`.
final class Zygotes: Sendable {
    private enum Entry {
        case starting(FunctionDefinition, AsyncValue<ZygoteTemplate?>)
        case ready(ZygoteTemplate)
        case failed(FunctionDefinition, untilNanos: UInt64)
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var forked = 0
        var fallbacks = 0
        /// The node is stopping: no template starts any more.
        var shutDown = false

        var ready: [ZygoteTemplate] {
            entries.values.compactMap { if case .ready(let t) = $0 { return t } else { return nil } }
        }
    }
    private let state = Mutex(State())
    private let logger: Logger
    static let retryAfter: Duration = .seconds(30)

    init(logger: Logger) { self.logger = logger }

    /// Instances started from templates, and starts that fell back to a normal container.
    var counts: (forked: Int, fallbacks: Int) { state.withLock { ($0.forked, $0.fallbacks) } }

    /// The templates alive now.
    var templates: [ZygoteTemplate] { state.withLock { $0.ready }.filter(\.isAlive) }

    /// A hot container forked from the function's template, or nil when the start must fall
    /// back to a normal container. An instance that fails once forked fails the start as any
    /// start fails (502, 504).
    func start(_ task: ContainerTask, driver: NativeDriver, phases: inout StartPhases) async throws(RunnerError) -> HotContainer? {
        guard let template = await template(for: task, driver: driver) else { return nil }
        var parked = template.takeParked()
        if let dead = parked, dead.container.exit != nil {
            await dead.discard(template: template)
            parked = nil
        }
        let instance: ZygoteInstance
        if let parked {
            instance = parked
        } else {
            do {
                instance = try await template.fork(task, driver: driver)
            } catch {
                // A cancelled start is not the template's failure: the start ends, nothing falls back.
                if Task.isCancelled { throw error }
                await giveUp(on: template, task, "could not fork", error)
                return nil
            }
        }
        phases.mark("fork")
        let hot: HotContainer
        do {
            hot = try await instance.start(task, template: template, driver: driver)
        } catch where Task.isCancelled {
            throw error
        } catch where !template.isAlive {
            // The template's end took the instance with it: not the function's failure.
            await giveUp(on: template, task, "ended", error)
            return nil
        } catch {
            // A fork that failed while its template lives: this start falls back to a normal
            // one (which, for a broken function, fails as it would have anyway), except after
            // a timeout, which a second start would only double. Three in a row, and the
            // template is given up on.
            let timedOut = error.code == .containerInitTimeout
            if template.instanceStartFailed() {
                await giveUp(on: template, task, "had three forks in a row fail to start", error)
            } else if !timedOut {
                state.withLock { $0.fallbacks += 1 }
                logger.warning(
                    "a zygote fork failed to start; this start falls back to a normal container",
                    metadata: task.function.logMetadata(container: task.name).merging(["error": "\(error)"]) { $1 })
            }
            if timedOut { throw error }
            return nil
        }
        template.instanceStarted()
        state.withLock { $0.forked += 1 }
        phases.mark("ready")
        template.parkAhead(task, driver: driver)
        return hot
    }

    private enum Decision {
        case use(ZygoteTemplate)
        case wait(AsyncValue<ZygoteTemplate?>)
        case make(AsyncValue<ZygoteTemplate?>)
        case fallBack
    }

    private func template(for task: ContainerTask, driver: NativeDriver) async -> ZygoteTemplate? {
        let key = Self.key(task.function)
        let now = MonotonicClock.nowNanos()
        var ended: ZygoteTemplate?
        let (decision, replaced) = state.withLock { s -> (Decision, ZygoteTemplate?) in
            var replaced: ZygoteTemplate?
            if s.shutDown { return (.fallBack, nil) }
            switch s.entries[key] {
            case .ready(let t) where t.function == task.function:
                if t.isAlive { return (.use(t), nil) }
                ended = t
                s.entries[key] = .failed(task.function, untilNanos: now &+ Self.retryAfter.nanoseconds)
                s.fallbacks += 1
                return (.fallBack, nil)
            case .ready(let t):
                replaced = t
            case .starting(let f, let pending) where f == task.function:
                return (.wait(pending), nil)
            case .failed(let f, let until) where f == task.function && now < until:
                s.fallbacks += 1
                return (.fallBack, nil)
            default:
                break
            }
            let pending = AsyncValue<ZygoteTemplate?>()
            s.entries[key] = .starting(task.function, pending)
            return (.make(pending), replaced)
        }
        if let replaced { await replaced.retire() }
        if let ended {
            logger.warning(
                "zygote template ended; instances start normally for \(Self.retryAfter)",
                metadata: task.function.logMetadata(container: ended.container.name).merging(["exit": "\(ended.container.exit.map { "\($0)" } ?? "?")"]) { $1 })
            await ended.retire()
        }
        switch decision {
        case .use(let t): return t
        case .fallBack: return nil
        case .wait(let pending):
            guard let t = await pending.waitIgnoringCancellation() else { return nil }
            return t
        case .make(let pending):
            do {
                let t = try await ZygoteTemplate.start(task, driver: driver)
                let current = state.withLock { s -> Bool in
                    guard case .starting(_, let p) = s.entries[key], p === pending else { return false }
                    s.entries[key] = .ready(t)
                    return true
                }
                if !current { await t.retire() }
                pending.set(current ? t : nil)
                return current ? t : nil
            } catch {
                state.withLock { s in
                    if case .starting(_, let p) = s.entries[key], p === pending {
                        s.entries[key] = .failed(task.function, untilNanos: MonotonicClock.nowNanos() &+ Self.retryAfter.nanoseconds)
                    }
                    s.fallbacks += 1
                }
                logger.warning(
                    "zygote template failed to start; instances start normally for \(Self.retryAfter)",
                    metadata: task.function.logMetadata(container: task.name).merging(["error": "\(error)"]) { $1 })
                pending.set(nil)
                return nil
            }
        }
    }

    /// A template that could not fork is done: retired, remembered as failed, and this start
    /// falls back.
    private func giveUp(on template: ZygoteTemplate, _ task: ContainerTask, _ what: String, _ error: RunnerError) async {
        let key = Self.key(task.function)
        state.withLock { s in
            if case .ready(let t) = s.entries[key], t === template {
                s.entries[key] = .failed(task.function, untilNanos: MonotonicClock.nowNanos() &+ Self.retryAfter.nanoseconds)
            }
            s.fallbacks += 1
        }
        logger.warning(
            "zygote template \(what); instances start normally for \(Self.retryAfter)",
            metadata: task.function.logMetadata(container: template.container.name).merging(["error": "\(error)"]) { $1 })
        await template.retire()
    }

    /// Ends every template now (the node is stopping, its instances are ending too).
    func closeAll() async {
        let all = state.withLock { s -> [ZygoteTemplate] in
            s.shutDown = true
            defer { s.entries = [:] }
            return s.ready
        }
        for t in all { await t.close() }
    }

    private static func key(_ f: FunctionDefinition) -> String { f.fnID }

    /// The fn was saved as `definition`, or deleted (nil): a template of another definition is
    /// retired (it ends with its last instance), and a failure remembered for one is forgotten.
    func functionChanged(fnID: String, to definition: FunctionDefinition?) {
        let retired = state.withLock { s -> ZygoteTemplate? in
            switch s.entries[fnID] {
            case .ready(let t) where t.function != definition:
                s.entries[fnID] = nil
                return t
            case .failed(let f, _) where f != definition:
                s.entries[fnID] = nil
                return nil
            default:
                return nil
            }
        }
        guard let retired else { return }
        Task { await retired.retire() }
    }
}
