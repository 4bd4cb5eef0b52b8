using Microsoft.Extensions.DependencyInjection;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using Orleans.Serialization;
using Xunit;

namespace OServe.Engine.Tests.Distributed;

/// <summary>A request crosses the wire to a worker whole: its sampling controls, and where a resumed one stands (its seeded stream, its streamed tokens).</summary>
public sealed class WireSamplingTests
{
    [Fact]
    public void Every_control_survives_the_orleans_serializer()
    {
        var sampling = new SamplingParams
        {
            MaxTokens = 25, Temperature = 0.7f, TopP = 0.9f, TopK = 40, Seed = 42, SeedStreamOffset = 15,
            Stop = ["\n\n"], StopTokenIds = [7], IgnoreEos = true,
        };
        using var services = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(WireSampling).Assembly)).BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer<WireSampling>>();

        var back = serializer.Deserialize(serializer.SerializeToArray(WireSampling.Of(sampling)))!.ToParams();

        Assert.Equal(sampling with { Stop = back.Stop, StopTokenIds = back.StopTokenIds }, back);
        Assert.Equal(sampling.Stop, back.Stop);
        Assert.Equal(sampling.StopTokenIds, back.StopTokenIds);
        Assert.Equal(15, back.SeedStreamOffset);
    }

    [Fact]
    public void A_resumed_requests_streamed_token_count_survives_the_orleans_serializer()
    {
        using var services = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(WorkerRequest).Assembly)).BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer<WorkerRequest>>();
        var request = new WorkerRequest("r~1", [1, 2, 3, 40, 41], WireSampling.Of(new SamplingParams { MaxTokens = 5 })) { ResumedOutputTokens = 2 };

        var back = serializer.Deserialize(serializer.SerializeToArray(request))!.ToGenerationRequest();

        Assert.Equal([1, 2, 3, 40, 41], back.PromptTokens);
        Assert.Equal(2, back.ResumedOutputTokens);
        Assert.Equal(5, back.Sampling.MaxTokens);
    }
}
