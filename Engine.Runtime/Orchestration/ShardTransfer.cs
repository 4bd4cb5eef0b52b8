using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Parallelism;
using TorchSharp;

namespace OServe.Engine.Orchestration;

/// <summary>
/// How a new replica gets its weights onto its devices: each shard copied from pool devices that
/// already hold the bytes (hot), the rest read from storage (cold). Tests substitute one that fails midway.
/// </summary>
public interface IShardTransfer
{
    /// <summary>
    /// Builds a tp x pp replica over <paramref name="devices"/> (stage-major). With
    /// <paramref name="copyFromPeers"/> every slice some pool device holds is copied from it and only
    /// the rest is read from <paramref name="storage"/> (opened only when needed); without it, all
    /// of it is read. The result's <see cref="ParallelLlama.BuildReport"/> says which bytes came from where.
    /// </summary>
    ParallelLlama Build(LlamaConfig config, IReadOnlyList<PoolDevice> devices, int tp, int pp, IWeightStore storage, torch.ScalarType dtype, bool copyFromPeers);
}

/// <summary>The real transfer: <see cref="ParallelLlama.Create"/> over the device pool (device-to-device copies, peer first).</summary>
public sealed class ShardTransfer : IShardTransfer
{
    public static ShardTransfer Instance { get; } = new();

    public ParallelLlama Build(LlamaConfig config, IReadOnlyList<PoolDevice> devices, int tp, int pp, IWeightStore storage, torch.ScalarType dtype, bool copyFromPeers)
    {
        ArgumentNullException.ThrowIfNull(storage);
        using var source = new LazyWeightSource(storage);
        return ParallelLlama.Create(config, devices, tp, pp, source, dtype, new ParallelLlamaOptions { CopyFromPeers = copyFromPeers });
    }

    /// <summary>Opens the store on the first tensor it must read, so a switch served wholly by peers never touches storage.</summary>
    private sealed class LazyWeightSource(IWeightStore storage) : IWeightSource, IDisposable
    {
        private IWeightSource? _opened;

        public string Origin => storage.Origin;
        public IReadOnlyCollection<string> Names => Opened.Names;
        public torch.Tensor Load(string name) => Opened.Load(name);

        private IWeightSource Opened => _opened ??= storage.Open();

        public void Dispose() => (_opened as IDisposable)?.Dispose();
    }
}
