package job

// SafeName is safeName, for the tests.
var SafeName = safeName
