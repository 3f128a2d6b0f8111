#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// SIGINT and SIGTERM turned into something a reader can stop for: a flag, and a pipe that
/// `poll` wakes on, so an ingest blocked on a quiet pipe still ends its batch cleanly.
///
/// The first signal asks to stop after the current batch is committed; a second one ends the
/// process at once (exit 128 + signal), which loses nothing either: the last committed batch and
/// its checkpoint are intact.
public enum Interruption {
    /// The signal received first, or 0.
    public static var signal: Int32 { received.load(ordering: .relaxed) }

    /// Installs the handlers (once per process; later calls do nothing).
    /// - Parameter reload: also take SIGHUP, as a request to reload (``takeReloadRequest()``),
    ///   for the long-running commands.
    /// - Parameter stop: take SIGINT and SIGTERM; `serve` leaves them to its service group and
    ///   stops the readers with ``requestStop(_:)``.
    public static func install(reload: Bool = false, stop: Bool = true) {
        guard installed.exchange(true, ordering: .relaxed) == false else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        wakeRead.store(fds[0], ordering: .relaxed)
        wakeWrite.store(fds[1], ordering: .relaxed)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { sig in
            // Async-signal-safe only: atomics, write(2), _exit(2).
            if sig == SIGHUP {
                Interruption.reloads.wrappingAdd(1, ordering: .relaxed)
            } else if Interruption.received.exchange(sig, ordering: .relaxed) != 0 {
                _exit(128 + sig)
            }
            var byte: UInt8 = 1
            _ = write(Interruption.wakeWrite.load(ordering: .relaxed), &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: a blocking read returns EINTR
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for sig in (stop ? [SIGINT, SIGTERM] : []) + (reload ? [SIGHUP] : []) {
            sigaction(sig, &action, nil)
        }
        // Unblocked even when another handler takes them (serve's service group).
        for sig in [SIGINT, SIGTERM] + (reload ? [SIGHUP] : []) { sigaddset(&unblock, sig) }
        // A parent may have started us with these signals blocked.
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// Stops the readers as `signal` would have (for a shutdown that a signal handler elsewhere
    /// started): blocked reads return, and sources report ``LineReader/Status/interrupted``.
    public static func requestStop(_ signal: Int32) {
        guard received.compareExchange(expected: 0, desired: signal, ordering: .relaxed).exchanged else { return }
        var byte: UInt8 = 1
        _ = write(wakeWrite.load(ordering: .relaxed), &byte, 1)
    }

    /// The read end of the pipe a signal writes to, for `poll` beside other descriptors (-1 before
    /// ``install(reload:)``).
    public static var wakeDescriptor: Int32 { wakeRead.load(ordering: .relaxed) }

    /// Whether a SIGHUP arrived that ``takeReloadRequest()`` has not taken yet.
    public static var reloadPending: Bool { reloads.load(ordering: .relaxed) != reloadsTaken.load(ordering: .relaxed) }

    /// Takes a pending reload request (SIGHUP): true once per burst of signals.
    public static func takeReloadRequest() -> Bool {
        let now = reloads.load(ordering: .relaxed)
        guard reloadsTaken.exchange(now, ordering: .relaxed) != now else { return false }
        // Empty the wake pipe, so poll does not wake for a signal already handled.
        var buf = [UInt8](repeating: 0, count: 64)
        while read(wakeDescriptor, &buf, buf.count) > 0 {}
        return true
    }

    /// Waits until `fd` is readable or a signal arrived; true when it is readable.
    public static func waitReadable(_ fd: Int32) -> Bool {
        let wake = wakeRead.load(ordering: .relaxed)
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        while signal == 0 {
            let n = poll(&fds, wake >= 0 ? 2 : 1, -1)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return true }  // let read(2) report the problem
            if fds[0].revents != 0 { return true }
        }
        return false
    }

    /// The conventional exit status for a process ended by `signal`: 130 for SIGINT, 143 for SIGTERM.
    public static func exitStatus(_ signal: Int32) -> Int32 { 128 + signal }

    /// The signal's name, `SIGINT` or `SIGTERM`.
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }

    static let received = Atomic<Int32>(0)
    static let reloads = Atomic<Int>(0)
    static let reloadsTaken = Atomic<Int>(0)
    static let installed = Atomic<Bool>(false)
    static let wakeRead = Atomic<Int32>(-1)
    static let wakeWrite = Atomic<Int32>(-1)
}
