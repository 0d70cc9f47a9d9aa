// The one place buffers cross threads: a bounded FIFO whose lock orders the two sides, so what
// a producer wrote into a buffer is visible to the consumer that takes it. Closing it (with
// the error that ended the pipeline) wakes every waiter on both sides.
import Foundation

final class HandoffQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private let capacity: Int
    private var failure: VFIOError?
    private var finished = false
    /// Time producers and consumers spent waiting (backpressure and starvation, for metrics).
    private(set) var producerWait: Duration = .zero
    private(set) var consumerWait: Duration = .zero

    init(capacity: Int) {
        precondition(capacity > 0, "a hand-off queue holds at least one element")
        self.capacity = capacity
    }

    private var count: Int { items.count - head }

    /// Adds `element`, waiting while the queue is full; throws the pipeline's error once closed.
    func put(_ element: Element) throws(VFIOError) {
        condition.lock()
        defer { condition.unlock() }
        let clock = ContinuousClock()
        let start = clock.now
        while count >= capacity && failure == nil && !finished { condition.wait() }
        producerWait += clock.now - start
        if let failure { throw failure }
        precondition(!finished, "put after finish")
        if head > 0 && head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        }
        items.append(element)
        condition.broadcast()
    }

    /// The next element, waiting while the queue is empty; nil once finished and drained;
    /// throws the pipeline's error once closed.
    func take() throws(VFIOError) -> Element? {
        condition.lock()
        defer { condition.unlock() }
        let clock = ContinuousClock()
        let start = clock.now
        while count == 0 && failure == nil && !finished { condition.wait() }
        consumerWait += clock.now - start
        if let failure { throw failure }
        guard count > 0 else { return nil }
        let element = items[head]
        head += 1
        condition.broadcast()
        return element
    }

    /// The next element if one is there now, without waiting; throws once closed.
    func takeIfAvailable() throws(VFIOError) -> Element? {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        guard count > 0 else { return nil }
        let element = items[head]
        head += 1
        condition.broadcast()
        return element
    }

    /// No more elements will come; consumers drain what is left, then get nil.
    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Ends the pipeline with `error`: every waiter, now and later, throws it.
    func close(_ error: VFIOError) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    var error: VFIOError? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }
}
