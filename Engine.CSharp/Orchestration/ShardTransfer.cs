using OServe.Models.Llama;
using OServe.Models.Loading;
using TorchSharp;

namespace OServe.Engine.Orchestration;

/// <summary>
/// How a new replica gets its weights: copied from a device that already holds them (hot), or
/// read from storage (cold). The switch decides which; tests substitute one that fails midway.
/// </summary>
public interface IShardTransfer
{
    /// <summary>Copies every weight of <paramref name="peer"/> onto <paramref name="target"/> (a real copy, never shared storage).</summary>
    LlamaModel FromPeer(LlamaModel peer, torch.Device target);

    /// <summary>Reads the weights from <paramref name="storage"/> onto <paramref name="target"/>.</summary>
    LlamaModel FromStorage(IWeightStore storage, LlamaConfig config, torch.Device target, torch.ScalarType dtype);
}

/// <summary>
/// The real transfers. A peer copy goes device to device (cuda:i to cuda:j over NVLink/PCIe, or a
/// host memcpy between logical CPU devices), tensor by tensor, in the peer's dtype.
/// </summary>
public sealed class ShardTransfer : IShardTransfer
{
    public static ShardTransfer Instance { get; } = new();

    public LlamaModel FromPeer(LlamaModel peer, torch.Device target)
    {
        ArgumentNullException.ThrowIfNull(peer);
        using var source = new PeerWeightSource(peer, target);
        return LlamaModel.Create(peer.Config, source, target, peer.DType);
    }

    public LlamaModel FromStorage(IWeightStore storage, LlamaConfig config, torch.Device target, torch.ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(storage);
        var source = storage.Open();
        try
        {
            return LlamaModel.Create(config, source, target, dtype);
        }
        finally
        {
            (source as IDisposable)?.Dispose();
        }
    }

    /// <summary>
    /// A live model's weights as a weight source. On the same torch device a plain alias would let
    /// the new replica share the peer's storage (LlamaModel's to() is a no-op there), so the tensor
    /// is cloned; across devices to() itself is the copy.
    /// </summary>
    private sealed class PeerWeightSource(LlamaModel peer, torch.Device target) : IWeightSource, IDisposable
    {
        private readonly bool _sameDevice = peer.Device.type == target.type && peer.Device.index == target.index;

        public string Origin => $"peer replica on {peer.Device}";

        public IReadOnlyCollection<string> Names => peer.Weights.Keys.ToArray();

        public torch.Tensor Load(string name)
        {
            if (!peer.Weights.TryGetValue(name, out var tensor))
                throw new InvalidDataException($"{Origin}: no tensor named '{name}'");
            return _sameDevice ? tensor.clone() : tensor.alias();
        }

        public void Dispose() { }
    }
}

