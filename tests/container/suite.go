package container

// SuiteTests are the tests of tests/rdmasuite that TestRDMASuite runs inside
// a container; make test runs them there instead of in rdmasuite's first
// (default polling mode) pass on the VM itself (internal/testrun).
const SuiteTests = "^(TestMessengerSuite|TestNettestConn|TestNettestConnCM)$"
