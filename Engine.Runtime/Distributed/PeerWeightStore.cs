using OServe.Engine.Orchestration;
using OServe.Models.Loading;
using TorchSharp;

namespace OServe.Engine.Distributed;

/// <summary>
/// Weights read from another worker, in chunks of at most its WeightChunkBytes per grain call:
/// the cross-node leg of a hot copy (what this node's own devices lack). Each tensor arrives whole
/// and is sliced here; a few chunk requests are in flight at once so one round trip does not
/// bound the rate. Runs on a worker thread (never on a grain's scheduler: it blocks).
/// </summary>
public sealed class PeerWeightStore(IWorkerGrain peer, string peerNode, int chunkBytes = 1 << 20, int numInFlight = 4) : IWeightStore
{
    private long _bytesReceived;

    public string Origin => $"worker {peerNode}";

    /// <summary>Bytes that came over the network so far.</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    public IWeightSource Open() => new Source(this, peer.GetWeightIndex().GetAwaiter().GetResult());

    private sealed class Source(PeerWeightStore store, WeightEntry[] index) : IWeightSource
    {
        private readonly Dictionary<string, WeightEntry> _byName = index.ToDictionary(e => e.Name, StringComparer.Ordinal);

        public string Origin => store.Origin;
        public IReadOnlyCollection<string> Names => _byName.Keys;

        public torch.Tensor Load(string name)
        {
            if (!_byName.TryGetValue(name, out var entry))
                throw new InvalidDataException($"{Origin}: no tensor named '{name}'");
            var tensor = torch.empty(entry.Shape, (torch.ScalarType)entry.DType);
            try
            {
                Fetch(entry, tensor);
                return tensor;
            }
            catch
            {
                tensor.Dispose();
                throw;
            }
        }

        private void Fetch(WeightEntry entry, torch.Tensor tensor)
        {
            var offsets = new List<long>();
            for (long offset = 0; offset < entry.Bytes; offset += store.ChunkBytes)
                offsets.Add(offset);
            for (int first = 0; first < offsets.Count; first += store.NumInFlight)
            {
                var batch = offsets.Skip(first).Take(store.NumInFlight).ToArray();
                var chunks = Task.WhenAll(batch.Select(o => store.Peer.ReadWeightChunk(entry.Name, o, (int)Math.Min(store.ChunkBytes, entry.Bytes - o))))
                    .GetAwaiter().GetResult();
                var target = tensor.bytes;
                for (int i = 0; i < batch.Length; i++)
                {
                    long expected = Math.Min(store.ChunkBytes, entry.Bytes - batch[i]);
                    if (chunks[i].Length != expected)
                        throw new InvalidDataException($"{Origin}: tensor '{entry.Name}' chunk at {batch[i]} has {chunks[i].Length} bytes, expected {expected}");
                    chunks[i].CopyTo(target.Slice((int)batch[i]));
                    Interlocked.Add(ref store._bytesReceived, chunks[i].Length);
                }
            }
        }
    }

    private IWorkerGrain Peer => peer;
    private int ChunkBytes => chunkBytes;
    private int NumInFlight => numInFlight;
}
