using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace ClippyBot.Tests.Rig;

/// <summary>Keeps every log line of a service under test ("category: message exception"), for tests that read what it logged.</summary>
public sealed class CapturingLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"[{logLevel}] {category}: {formatter(state, exception)} {exception}");
    }
}
