namespace OServe.Models.Parallelism;

/// <summary>
/// Where a replica's weight bytes came from when it was built: copied within the same device,
/// copied from another device of the pool (a peer), or read from the weight source (storage).
/// </summary>
public sealed record TransferReport(long BytesFromSameDevice, long BytesFromPeers, long BytesFromStorage, int NumCopies, TimeSpan Elapsed)
{
    public long TotalBytes => BytesFromSameDevice + BytesFromPeers + BytesFromStorage;

    public override string ToString() =>
        $"{TotalBytes / 1e6:F1} MB in {Elapsed.TotalMilliseconds:F1} ms: {BytesFromSameDevice / 1e6:F1} MB on-device, " +
        $"{BytesFromPeers / 1e6:F1} MB from peers, {BytesFromStorage / 1e6:F1} MB from storage ({NumCopies} copies)";
}
