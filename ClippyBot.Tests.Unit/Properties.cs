// Nothing here shares state: methods run in parallel.
[assembly: Parallelize(Scope = ExecutionScope.MethodLevel, Workers = 0)]
