/// A condition-level error before it is placed in a file.
struct ConditionError: Error, Sendable {
    var code: String
    var message: String
    var offset: Int
}

