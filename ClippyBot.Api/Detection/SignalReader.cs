using ClippyBot.ServiceDefaults.Detection;
using StackExchange.Redis;

namespace ClippyBot.Api.Detection;

/// <summary>
/// Reads the per-minute signal counts one evaluation needs in one pipelined round: whole hashes for the minutes of the
/// rules' windows (every subject), single fields for older minutes (the platform total for baselines, an open alert's
/// subject for its episode count), and each signal's recent samples.
/// </summary>
internal sealed class SignalReader(IDatabase redis, SecuritySignals signals)
{
    public const int MaxFieldsPerBucket = 10_000;

    private readonly HashSet<(string Signal, long Minute)> _whole = [];
    private readonly Dictionary<(string Signal, long Minute), HashSet<string>> _fields = [];
    private readonly Dictionary<(string Signal, long Minute), Dictionary<string, long>> _values = [];
    private readonly Dictionary<string, List<(DateTimeOffset At, string Subject, string Detail)>> _samples = new(StringComparer.Ordinal);

    public void Whole(string signal, long from, long to)
    {
        for (var minute = from; minute <= to; minute++)
        {
            _whole.Add((signal, minute));
        }
        _samples.TryAdd(signal, []);
    }

    public void Field(string signal, long from, long to, string field)
    {
        for (var minute = from; minute <= to; minute++)
        {
            if (!_fields.TryGetValue((signal, minute), out var fields))
            {
                _fields[(signal, minute)] = fields = new HashSet<string>(StringComparer.Ordinal);
            }
            fields.Add(field);
        }
    }

    public async Task LoadAsync()
    {
        // A hash no honest writer could have grown this large (each replica adds at most 1,000 subjects a minute) is read
        // as its total and the subjects asked for; the rest count as "(other)" — a compromised writer cannot make every
        // round read millions of fields.
        var sizes = redis.CreateBatch();
        var lengths = _whole.Select(k => (k, sizes.HashLengthAsync(signals.BucketKey(k.Signal, k.Minute)))).ToList();
        sizes.Execute();
        var oversized = new HashSet<(string Signal, long Minute)>();
        foreach (var (key, length) in lengths)
        {
            if (await length > MaxFieldsPerBucket)
            {
                oversized.Add(key);
            }
        }
        foreach (var key in oversized)
        {
            _whole.Remove(key);
            Field(key.Signal, key.Minute, key.Minute, SecuritySignals.TotalField);
        }
        var batch = redis.CreateBatch();
        var whole = _whole.Select(k => (k, batch.HashGetAllAsync(signals.BucketKey(k.Signal, k.Minute)))).ToList();
        var partial = _fields.Where(f => !_whole.Contains(f.Key))
            .Select(f => (f.Key, Fields: f.Value.ToArray(), Task: batch.HashGetAsync(signals.BucketKey(f.Key.Signal, f.Key.Minute), [.. f.Value.Select(v => (RedisValue)v)])))
            .ToList();
        var samples = _samples.Keys.Select(s => (s, batch.ListRangeAsync(signals.SamplesKey(s), 0, SecuritySignals.SamplesKept - 1))).ToList();
        batch.Execute();
        foreach (var (key, task) in whole)
        {
            // Another service's hash is input like any other: over-long subjects count as "(other)".
            var map = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var entry in await task)
            {
                if (entry.Value.TryParse(out long count))
                {
                    var name = entry.Name.ToString();
                    name = name.Length > SecuritySignals.MaxSubjectLength ? SecuritySignals.OtherSubjects : name;
                    map[name] = map.GetValueOrDefault(name) + count;
                }
            }
            _values[key] = map;
        }
        foreach (var (key, fields, task) in partial)
        {
            var values = await task;
            var map = new Dictionary<string, long>(StringComparer.Ordinal);
            for (var i = 0; i < fields.Length; i++)
            {
                if (values[i].TryParse(out long count))
                {
                    map[fields[i]] = count;
                }
            }
            if (oversized.Contains(key))
            {
                var other = map.GetValueOrDefault(SecuritySignals.TotalField) - map.Where(v => v.Key != SecuritySignals.TotalField).Sum(v => v.Value);
                if (other > 0)
                {
                    map[SecuritySignals.OtherSubjects] = map.GetValueOrDefault(SecuritySignals.OtherSubjects) + other;
                }
            }
            _values[key] = map;
        }
        foreach (var (signal, task) in samples)
        {
            _samples[signal] = [.. (await task).Select(v => SecuritySignals.ParseSample(v.ToString())).OfType<(DateTimeOffset, string, string)>()];
        }
    }

    public long Count(string signal, long minute, string field) =>
        _values.TryGetValue((signal, minute), out var values) ? values.GetValueOrDefault(field) : 0;

    /// <summary>Every subject of a whole-read minute and its count (the total excluded).</summary>
    public IEnumerable<KeyValuePair<string, long>> Subjects(string signal, long minute) =>
        _values.TryGetValue((signal, minute), out var values) ? values.Where(v => v.Key != SecuritySignals.TotalField) : [];

    /// <summary>Every subject any loaded minute names.</summary>
    public HashSet<string> AllSubjects() =>
        [.. _values.Values.SelectMany(v => v.Keys).Where(k => k != SecuritySignals.TotalField)];

    public IReadOnlyList<(DateTimeOffset At, string Subject, string Detail)> Samples(string signal) =>
        _samples.TryGetValue(signal, out var samples) ? samples : [];
}
