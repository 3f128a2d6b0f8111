/// One decoded inference-log (or InferenceWall) event.
///
/// Values are stored by slot, in the order of the ``FieldTable`` the decoder was built with, so
/// that compiled rules read a field by index rather than by name.
public struct Event: Sendable {
    /// The event's own time (DESIGN §2).
    public var time: EventTime
    /// Field values, indexed by ``FieldTable`` slot.
    public var values: [FieldValue]
    /// Where the event came from: a source name and the 1-based line number in it.
    public var origin: Origin

    public init(time: EventTime, values: [FieldValue], origin: Origin) {
        self.time = time
        self.values = values
        self.origin = origin
    }

    @inlinable public subscript(slot: Int) -> FieldValue { values[slot] }

    /// The event's id: `log_id`, else InferenceWall's `request_id`, else `source:line`. An empty
    /// string is no id (some of the captured InferenceWall scans carry `"request_id": ""`).
    public var id: String {
        if let s = values[FieldTable.logID].string, !s.isEmpty { return s }
        if let s = values[FieldTable.requestID].string, !s.isEmpty { return s }
        return "\(origin.source):\(origin.line)"
    }

    /// Where an event was read: the source's name, the 1-based line number (a journal record's
    /// sequence number) and the line's byte offset (its position in the journal).
    public struct Origin: Sendable, Hashable {
        public var source: String
        public var line: Int64
        public var offset: Int64
        public init(source: String, line: Int64, offset: Int64 = 0) {
            self.source = source
            self.line = line
            self.offset = offset
        }
    }
}

/// The fields an event carries, decided once from what rules, metrics and the engine reference.
///
/// The first slots are fixed (the fields every event needs); every other path gets the next slot
/// when first asked for. Paths are dotted (`tool_calls.name`) and project over arrays. The name of
/// a ``DerivedField`` gets a slot the decoder computes instead of reading, after its inputs' slots.
public struct FieldTable: Sendable {
    public static let timestamp = 0
    public static let logID = 1
    public static let requestID = 2
    public static let userID = 3
    public static let sessionID = 4
    public static let modelID = 5
    public static let guardrailAction = 6
    public static let decision = 7

    /// The fixed paths, in slot order.
    public static let fixedPaths = [
        "timestamp", "log_id", "request_id", "user_id", "session_id", "model_id", "guardrail_action", "decision",
    ]

    public private(set) var paths: [String]
    private var index: [String: Int]
    /// The derived fields in the table, in slot order.
    public private(set) var derived: [DerivedSlot] = []

    /// A derived field's slot and the slots of its ``DerivedField/inputs``.
    public struct DerivedSlot: Sendable {
        public let slot: Int
        public let field: DerivedField
        public let inputs: [Int]
    }

    public init() {
        paths = FieldTable.fixedPaths
        index = Dictionary(uniqueKeysWithValues: paths.enumerated().map { ($1, $0) })
    }

    /// The slot of `path`, adding it if it is new (a derived field with its inputs).
    public mutating func slot(for path: String) -> Int {
        if let s = index[path] { return s }
        guard let field = DerivedField(rawValue: path) else { return append(path) }
        let inputs = field.inputs.map { slot(for: $0) }
        let s = append(path)
        derived.append(DerivedSlot(slot: s, field: field, inputs: inputs))
        return s
    }

    private mutating func append(_ path: String) -> Int {
        paths.append(path)
        index[path] = paths.count - 1
        return paths.count - 1
    }

    /// Whether `slot` is computed (a derived field) rather than read from the JSON.
    public func isDerived(_ slot: Int) -> Bool { derived.contains { $0.slot == slot } }

    /// Computes the derived slots of an event whose other slots hold what was read.
    public func derive(_ values: inout [FieldValue]) {
        for d in derived {
            let v = d.field.value(values, inputs: d.inputs)
            values[d.slot] = v
        }
    }

    /// The slot of `path` if it is in the table.
    public func existingSlot(for path: String) -> Int? { index[path] }

    public var count: Int { paths.count }
}
