namespace OServe.Engine.Serving;

/// <summary>An engine with figures of its own for GET /metrics (e.g. the plan runtime's switch counters).</summary>
public interface IMetricsContributor
{
    /// <summary>Appends families to the exposition; <paramref name="labels"/> carries model_name.</summary>
    void WriteMetrics(PrometheusText text, (string Name, string Value)[] labels);
}
