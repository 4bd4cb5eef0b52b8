using TorchSharp;

namespace OServe.Models.Parallelism;

/// <summary>
/// One device of a <see cref="DevicePool"/>: a CUDA device, or a logical device (a named slot
/// whose tensors live on the host CPU). It records which weight slices it currently holds, and
/// for whom, so a switch can find a device that already has the bytes it needs.
/// </summary>
public sealed class PoolDevice
{
    private readonly object gate = new();
    private readonly List<Holding> holdings = [];

    internal PoolDevice(string id, int index, torch.Device torchDevice, bool isLogical, bool ownsCore = false)
    {
        Id = id;
        Index = index;
        Torch = torchDevice;
        IsLogical = isLogical;
        OwnsCore = isLogical && ownsCore;
    }

    /// <summary>The plan's name for the device, <c>node/index</c> (e.g. <c>node0/3</c>).</summary>
    public string Id { get; }

    /// <summary>Position in the pool.</summary>
    public int Index { get; }

    /// <summary>Where its tensors live: cuda:i, or cpu for a logical device.</summary>
    public torch.Device Torch { get; }

    public bool IsLogical { get; }

    /// <summary>
    /// A logical device that stands for one core of the host: a replica's work on it runs on one
    /// thread with one intra-op thread (<see cref="IntraOpThreads"/>), and the shards of a tensor-
    /// parallel stage on such devices run at the same time. So a tp2 replica computes on two cores
    /// and two tp1 replicas on one core each, as on GPUs. False for CUDA devices and for logical
    /// devices that share every core (the default).
    /// </summary>
    public bool OwnsCore { get; }

    /// <summary>The pool the device belongs to (where peers holding weights are looked up).</summary>
    public DevicePool Pool { get; internal set; } = null!;

    /// <summary>Node part of <see cref="Id"/>.</summary>
    public string Node => Id[..Id.LastIndexOf('/')];

    /// <summary>A weight slice held on this device by <see cref="Owner"/>; the tensor stays valid while the owner lives.</summary>
    public sealed record Holding(WeightSlice Slice, torch.Tensor Tensor, object Owner)
    {
        public long Bytes => Tensor.NumberOfElements * Tensor.ElementSize;
    }

    public IReadOnlyList<Holding> Holdings
    {
        get { lock (gate) return holdings.ToArray(); }
    }

    /// <summary>Bytes of weights on the device, over every owner.</summary>
    public long HeldBytes
    {
        get { lock (gate) return holdings.Sum(h => h.Bytes); }
    }

    /// <summary>Bytes of weights <paramref name="owner"/> holds on the device.</summary>
    public long HeldBytesOf(object owner)
    {
        lock (gate) return holdings.Where(h => ReferenceEquals(h.Owner, owner)).Sum(h => h.Bytes);
    }

    /// <summary>Holdings of <paramref name="name"/> that overlap <paramref name="wanted"/>.</summary>
    public IReadOnlyList<Holding> Overlapping(WeightSlice wanted)
    {
        lock (gate) return holdings.Where(h => h.Slice.Overlaps(wanted)).ToArray();
    }

    internal void Hold(WeightSlice slice, torch.Tensor tensor, object owner)
    {
        lock (gate) holdings.Add(new Holding(slice, tensor, owner));
    }

    internal void Release(object owner)
    {
        lock (gate) holdings.RemoveAll(h => ReferenceEquals(h.Owner, owner));
    }

    public override string ToString() => IsLogical ? $"{Id} (logical, cpu{(OwnsCore ? ", one core" : "")})" : $"{Id} ({Torch})";
}
