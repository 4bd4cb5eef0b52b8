using Microsoft.Extensions.DependencyInjection;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using Orleans.Serialization;
using Xunit;

namespace OServe.Engine.Tests.Distributed;

/// <summary>Sampling controls cross the wire to a worker whole, a resumed request's place in its seeded stream included.</summary>
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
}
