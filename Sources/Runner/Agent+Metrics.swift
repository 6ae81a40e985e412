extension Agent {
    /// `/metrics` in Prometheus' text format: what the agent counted, with the live series
    /// (containers by state, resource tokens, the sandbox pool) read now.
    public func prometheusText() -> String {
        metrics.setLive(containers: containerCounts, tracker: tracker, startPaths: driver.startPaths)
        return metrics.registry.emitToString()
    }
}
