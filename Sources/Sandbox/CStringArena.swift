#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Owns the C strings and arrays handed to rn_spawn for the duration of one start.
///
/// The child of clone3 (without CLONE_VM) gets its own copy of this memory, so the arena can be
/// freed as soon as rn_spawn returns in the parent.
final class CStringArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    func string(_ s: String) -> UnsafePointer<CChar> {
        let p = strdup(s)!
        allocations.append(UnsafeMutableRawPointer(p))
        return UnsafePointer(p)
    }

    func optionalString(_ s: String?) -> UnsafePointer<CChar>? { s.map(string) }

    /// A NULL-terminated array of C strings.
    func stringArray(_ strings: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        let array = allocate(UnsafePointer<CChar>?.self, count: strings.count + 1)
        for (i, s) in strings.enumerated() { array[i] = string(s) }
        array[strings.count] = nil
        return UnsafePointer(array)
    }

    func array<T>(_ values: [T]) -> UnsafePointer<T>? {
        guard !values.isEmpty else { return nil }
        let p = allocate(T.self, count: values.count)
        p.initialize(from: values, count: values.count)
        return UnsafePointer(p)
    }

    /// malloc'd (not Swift-allocated) so that deinit can free everything the same way.
    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = malloc(MemoryLayout<T>.stride * count)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }

    deinit {
        for p in allocations { free(p) }
    }
}
