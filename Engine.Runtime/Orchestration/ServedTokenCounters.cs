namespace OServe.Engine.Orchestration;

/// <summary>
/// Prompt and generated token totals over every replica that ever served, so /metrics counters add
/// up across switches and never go back. Live and retiring replicas are summed at each read; a
/// stopped one's final figures move into the retired totals under the same lock as the reads (no
/// read sees them twice or not at all), and the replica itself (weights, cache) is let go. A
/// replica's warm-up run is not counted.
/// </summary>
internal sealed class ServedTokenCounters
{
    private readonly Lock _gate = new();
    private readonly HashSet<LiveReplica> _counted = [];
    private (long Prompt, long Generated) _retired;

    /// <summary>Replicas of a plan just installed (kept ones are already counted).</summary>
    public void Add(IEnumerable<LiveReplica> replicas)
    {
        lock (_gate)
            _counted.UnionWith(replicas);
    }

    /// <summary>A replica a switch stopped: its engine's counts are final now.</summary>
    public void Retire(LiveReplica replica)
    {
        lock (_gate)
        {
            if (!_counted.Remove(replica))
                return;
            var s = replica.Engine.Snapshot();
            _retired = (_retired.Prompt + s.PromptTokensTotal - replica.WarmUpTokens.Prompt,
                _retired.Generated + s.GenerationTokensTotal - replica.WarmUpTokens.Generated);
        }
    }

    public (long Prompt, long Generated) Totals()
    {
        lock (_gate)
        {
            var (prompt, generated) = _retired;
            foreach (var r in _counted)
            {
                var s = r.Engine.Snapshot();
                prompt += s.PromptTokensTotal - r.WarmUpTokens.Prompt;
                generated += s.GenerationTokensTotal - r.WarmUpTokens.Generated;
            }
            return (prompt, generated);
        }
    }
}
