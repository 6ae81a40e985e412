/// What the API tells the agent when a fn is saved or deleted.
extension Agent {
    /// A fn was created or changed (`f`, its definition as its calls will now see it): its
    /// prewarm target follows, and the driver lets go of what it keeps for an older
    /// definition (a zygote template) instead of waiting for the next start to notice.
    public func functionSaved(_ f: FunctionDefinition) {
        driver.functionChanged(fnID: f.fnID, to: f)
        prewarm(f)
    }

    /// A fn was deleted: no more instances ahead of demand, its idle ones end now, and so does
    /// what the driver keeps for it (a zygote template ends with its last instance).
    public func functionDeleted(fnID: String) {
        stopPrewarming(fnID: fnID)
        driver.functionChanged(fnID: fnID, to: nil)
    }
}
