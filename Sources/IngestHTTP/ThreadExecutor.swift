import Foundation

/// A task executor with one thread of its own: the pipeline runs on it, so its blocking reads and
/// SQLite commits never hold a thread of the cooperative pool (two on this kind of machine) or
/// an event loop of the HTTP server.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [UnownedJob] = []

    init(name: String) {
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        cond.lock()
        jobs.append(job)
        cond.signal()
        cond.unlock()
    }

    private func loop() {
        while true {
            cond.lock()
            while jobs.isEmpty { cond.wait() }
            let job = jobs.removeFirst()
            cond.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
