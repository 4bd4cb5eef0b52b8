using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Parallelism;

public sealed class KvMigrationTests : IDisposable
{
    private readonly LlamaModel model = ParallelFixtures.Untied();
    private readonly DevicePool pool = DevicePool.Logical(8);

    public void Dispose() => model.Dispose();

    private IPagedLanguageModel Replica(int tp, int pp, int firstDevice) =>
        tp == 1 && pp == 1 && firstDevice < 0 ? new SingleDeviceLlama(model, ownsModel: false) : ParallelFixtures.Shard(model, pool, tp, pp, firstDevice);

    /// <summary>
    /// Prefill and a few decodes on one replica, move the sequence's KV, keep decoding on the other:
    /// same tokens and logits as never moving. Through bytes: the KV leaves as <see cref="KvWire"/>
    /// bytes and arrives as a host cache, as between workers.
    /// </summary>
    [Theory]
    [InlineData(1, 1, 2, 1, false)]
    [InlineData(1, 1, 4, 1, false)] // KV heads replicated on the target
    [InlineData(2, 1, 1, 2, false)] // re-slices heads and layers
    [InlineData(4, 2, 1, 1, false)]
    [InlineData(1, 1, 2, 1, true)]
    [InlineData(2, 1, 1, 2, true)]
    [InlineData(4, 2, 1, 1, true)]
    public void DecodeContinuesAfterMovingTheKvCache(int fromTp, int fromPp, int toTp, int toPp, bool throughBytes)
    {
        var prompt = Enumerable.Range(0, 19).Select(i => (i * 37 + 5) % model.Config.VocabSize).ToArray();
        using var source = Replica(fromTp, fromPp, fromTp == 1 && fromPp == 1 ? -1 : 0);
        using var target = Replica(toTp, toPp, 4 - (toTp * toPp > 4 ? 4 : 0));
        using var sourceCache = source.CreateKvCache(numBlocks: 8, blockSize: 8);
        using var targetCache = target.CreateKvCache(numBlocks: 12, blockSize: 4); // another block size and scattered blocks
        int[] sourceTable = [6, 2, 7, 0];
        int[] targetTable = [11, 3, 8, 1, 5, 9, 0, 10];

        // Up to the move: prefill and three decodes on the source.
        var tokens = new List<int>(prompt);
        int Next(Tensor logits) => (int)logits[0].argmax().item<long>();
        using (var l = source.Forward([new SequenceChunk(prompt, 0, sourceTable)], sourceCache)) tokens.Add(Next(l));
        for (int i = 0; i < 3; i++)
        {
            using var l = source.Forward([new SequenceChunk([tokens[^1]], tokens.Count - 1, sourceTable)], sourceCache);
            tokens.Add(Next(l));
        }

        // The cache holds every position but the last token's (not fed yet).
        int numTokens = tokens.Count - 1;
        if (throughBytes)
        {
            var bytes = KvWire.Write(sourceCache, sourceTable, numTokens, out var header);
            Assert.Equal(2L * model.Config.NumLayers * model.Config.KvDim * numTokens * 4, bytes.Length);
            using var host = KvWire.Read(model.Config, header, bytes);
            KvMigration.Copy(host, [0], targetCache, targetTable, numTokens);
        }
        else
        {
            var report = KvMigration.Copy(sourceCache, sourceTable, targetCache, targetTable, numTokens);
            Assert.True(report.Bytes >= 2L * model.Config.NumLayers * model.Config.KvDim * numTokens * 4);
        }

        var stayed = new List<int>(tokens);
        var moved = new List<int>(tokens);
        for (int i = 0; i < 10; i++)
        {
            using var ls = source.Forward([new SequenceChunk([stayed[^1]], stayed.Count - 1, sourceTable)], sourceCache);
            using var lm = target.Forward([new SequenceChunk([moved[^1]], moved.Count - 1, targetTable)], targetCache);
            Assert.True(ParallelFixtures.MaxAbsDiff(ls, lm) < ParallelFixtures.Tolerance, $"step {i} after the move: logits differ by {ParallelFixtures.MaxAbsDiff(ls, lm)}");
            stayed.Add(Next(ls));
            moved.Add(Next(lm));
        }
        Assert.Equal(stayed, moved);
    }

    [Fact]
    public void TableTooShortForTheTokensIsRejected()
    {
        using var a = new SingleDeviceLlama(model, ownsModel: false);
        using var b = ParallelFixtures.Shard(model, pool, 2, 1);
        using var ca = a.CreateKvCache(4, 4);
        using var cb = b.CreateKvCache(4, 4);
        var e = Assert.Throws<ArgumentException>(() => KvMigration.Copy(ca, [0, 1, 2], cb, [0, 1], 10));
        Assert.Contains("target block table cannot hold 10 tokens", e.Message);
    }
}
