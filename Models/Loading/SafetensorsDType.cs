using TorchSharp;

namespace OServe.Models.Loading;

/// <summary>The dtype strings of the safetensors format and what each maps to.</summary>
public static class SafetensorsDType
{
    private static readonly Dictionary<string, (int Size, torch.ScalarType? Torch)> Known = new(StringComparer.Ordinal)
    {
        ["BOOL"] = (1, torch.ScalarType.Bool),
        ["U8"] = (1, torch.ScalarType.Byte),
        ["I8"] = (1, torch.ScalarType.Int8),
        ["I16"] = (2, torch.ScalarType.Int16),
        ["I32"] = (4, torch.ScalarType.Int32),
        ["I64"] = (8, torch.ScalarType.Int64),
        ["F16"] = (2, torch.ScalarType.Float16),
        ["BF16"] = (2, torch.ScalarType.BFloat16),
        ["F32"] = (4, torch.ScalarType.Float32),
        ["F64"] = (8, torch.ScalarType.Float64),
        // Valid in the format but without a TorchSharp dtype here: readable headers, unreadable data.
        ["U16"] = (2, null),
        ["U32"] = (4, null),
        ["U64"] = (8, null),
        ["F8_E4M3"] = (1, null),
        ["F8_E5M2"] = (1, null),
    };

    public static bool IsKnown(string dtype) => Known.ContainsKey(dtype);

    public static int ElementSize(string dtype) => Known[dtype].Size;

    public static torch.ScalarType? ToTorch(string dtype) => Known[dtype].Torch;

    public static string FromTorch(torch.ScalarType dtype) =>
        Known.FirstOrDefault(kv => kv.Value.Torch == dtype).Key
        ?? throw new NotSupportedException($"dtype {dtype} has no safetensors equivalent");
}
