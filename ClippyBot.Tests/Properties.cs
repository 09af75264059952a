// Test classes run in parallel; each owns its databases. Classes that start the whole AppHost opt out.
[assembly: Parallelize(Scope = ExecutionScope.ClassLevel, Workers = 2)]
