/// What the API tells the agent when a fn is saved or deleted.
extension Agent {
    /// A fn was created or changed (`f`, its definition as its calls will now see it): its
    /// prewarm target follows, and the driver lets go of what it keeps for an older
    /// definition (a zygote template) instead of waiting for the next start to notice.
    public func functionSaved(_ f: FunctionDefinition) {
        driver.functionChanged(fnID: f.fnID, to: f)
        prewarm(f)
    }

    /// A fn was deleted: no more instances ahead of demand (when it had a prewarm target, the
    /// idle containers of that definition end now), and the driver retires what it keeps for it
    /// (a zygote template ends with its last instance). Without a target, its idle containers
    /// live out their idle timeout, as in Fn.
    public func functionDeleted(fnID: String) {
        stopPrewarming(fnID: fnID)
        driver.functionChanged(fnID: fnID, to: nil)
    }
}
