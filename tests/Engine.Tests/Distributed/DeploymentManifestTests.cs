using YamlDotNet.RepresentationModel;
using Xunit;

namespace OServe.Engine.Tests.Distributed;

/// <summary>
/// deploy/k8s/ is well-formed and consistent with itself: every document has a kind and a name,
/// workloads' selectors match their pod labels, Services select a workload and target ports it
/// declares, the StatefulSet's service exists and is headless, workers request GPUs, and the names
/// the pods refer to (ConfigMap, ServiceAccount, the Redis Service in --membership) exist.
/// </summary>
public sealed class DeploymentManifestTests
{
    private static readonly string Folder = Path.Combine(RepositoryRoot(), "deploy", "k8s");

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OServe.sln")))
                return dir.FullName;
        throw new InvalidOperationException("OServe.sln not found above the test binaries");
    }

    private sealed record Doc(string File, YamlMappingNode Root)
    {
        public string Kind => Text(Root, "kind");
        public string Name => Text(Root, "metadata", "name");
    }

    private static List<Doc> LoadAll()
    {
        var docs = new List<Doc>();
        foreach (var file in Directory.EnumerateFiles(Folder, "*.yaml").Order())
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(file))
                stream.Load(reader);
            foreach (var doc in stream.Documents)
                docs.Add(new Doc(Path.GetFileName(file), Assert.IsType<YamlMappingNode>(doc.RootNode)));
        }
        return docs;
    }

    private static YamlNode? Get(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode(key), out var next))
                return null;
            node = next;
        }
        return node;
    }

    private static string Text(YamlNode node, params string[] path) =>
        (Get(node, path) as YamlScalarNode)?.Value ?? throw new Xunit.Sdk.XunitException($"missing {string.Join(".", path)}");

    private static Dictionary<string, string> Map(YamlNode? node) =>
        (node as YamlMappingNode)?.Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value!, kv => ((YamlScalarNode)kv.Value).Value!) ?? [];

    private static IEnumerable<YamlMappingNode> Containers(Doc workload) =>
        ((YamlSequenceNode)Get(workload.Root, "spec", "template", "spec", "containers")!).Children.Cast<YamlMappingNode>();

    [Fact]
    public void The_manifests_are_well_formed_and_consistent()
    {
        var docs = LoadAll();
        Assert.All(docs, d => Assert.False(string.IsNullOrEmpty(d.Kind + d.Name) || Get(d.Root, "apiVersion") is null, $"{d.File}: apiVersion, kind, metadata.name"));
        Assert.Equal(docs.Count, docs.Select(d => (d.Kind, d.Name)).Distinct().Count());
        var workloads = docs.Where(d => d.Kind is "Deployment" or "StatefulSet").ToList();
        var services = docs.Where(d => d.Kind == "Service").ToList();
        Assert.Contains(workloads, w => w.Kind == "StatefulSet" && w.Name == "oserve-worker");
        Assert.Contains(workloads, w => w.Kind == "Deployment" && w.Name == "oserve");

        foreach (var w in workloads)
        {
            var selector = Map(Get(w.Root, "spec", "selector", "matchLabels"));
            var labels = Map(Get(w.Root, "spec", "template", "metadata", "labels"));
            Assert.NotEmpty(selector);
            Assert.All(selector, kv => Assert.True(labels.TryGetValue(kv.Key, out var v) && v == kv.Value, $"{w.File} {w.Name}: selector {kv.Key}={kv.Value} not in the pod labels"));
            // Every ConfigMap, ServiceAccount and Service a pod names is defined here.
            foreach (var volume in (Get(w.Root, "spec", "template", "spec", "volumes") as YamlSequenceNode)?.Children ?? [])
                if (Get(volume, "configMap", "name") is YamlScalarNode cm)
                    Assert.Contains(docs, d => d.Kind == "ConfigMap" && d.Name == cm.Value);
            if (Get(w.Root, "spec", "template", "spec", "serviceAccountName") is YamlScalarNode account)
                Assert.Contains(docs, d => d.Kind == "ServiceAccount" && d.Name == account.Value);
            foreach (var arg in Containers(w).SelectMany(c => (Get(c, "args") as YamlSequenceNode)?.Children ?? []).Cast<YamlScalarNode>())
                if (arg.Value!.StartsWith("--membership=redis://", StringComparison.Ordinal))
                {
                    var host = arg.Value["--membership=redis://".Length..].Split(':')[0];
                    Assert.Contains(services, s => s.Name == host);
                }
        }

        foreach (var s in services)
        {
            var selector = Map(Get(s.Root, "spec", "selector"));
            var target = workloads.FirstOrDefault(w => selector.All(kv => Map(Get(w.Root, "spec", "template", "metadata", "labels")).GetValueOrDefault(kv.Key) == kv.Value));
            Assert.True(target is not null, $"{s.File}: Service {s.Name} selects no workload");
            var declared = Containers(target!).SelectMany(c => (Get(c, "ports") as YamlSequenceNode)?.Children ?? [])
                .SelectMany(p => new[] { Text(p, "name"), Text(p, "containerPort") }).ToHashSet();
            foreach (var port in ((YamlSequenceNode)Get(s.Root, "spec", "ports")!).Children)
                Assert.True(declared.Contains(Text(port, "targetPort")), $"{s.File}: Service {s.Name} targets port {Text(port, "targetPort")}, which {target!.Name} does not declare");
        }

        var workers = workloads.Single(w => w.Name == "oserve-worker");
        var headless = services.Single(s => s.Name == Text(workers.Root, "spec", "serviceName"));
        Assert.Equal("None", Text(headless.Root, "spec", "clusterIP"));
        var worker = Containers(workers).Single();
        Assert.True(int.Parse(Text(worker, "resources", "limits", "nvidia.com/gpu")) > 0, "workers request GPUs");
        var args = ((YamlSequenceNode)Get(worker, "args")!).Children.Cast<YamlScalarNode>().Select(a => a.Value).ToList();
        Assert.Equal("worker", args[0]);
        Assert.Contains("--kubernetes", args);
        var podLabels = Map(Get(workers.Root, "spec", "template", "metadata", "labels"));
        Assert.Equal(podLabels["orleans/clusterId"], args.Single(a => a!.StartsWith("--cluster-id=")!)!["--cluster-id=".Length..]);
    }

    [Fact]
    public void The_plan_in_the_config_map_names_worker_pods_that_the_stateful_set_creates()
    {
        var docs = LoadAll();
        var config = docs.Single(d => d.Kind == "ConfigMap");
        var cluster = OServe.Contracts.Yaml.ContractYaml.ParseCluster(Text(config.Root, "data", "cluster.yaml")).Value;
        var plan = OServe.Contracts.Yaml.ContractYaml.ParsePlan(Text(config.Root, "data", "plan.yaml")).Value;
        Assert.Empty(OServe.Contracts.PlanChecks.Validate(plan, cluster, OServe.Engine.Cli.Catalog.Model("Llama-2-70B")));
        int replicas = int.Parse(Text(docs.Single(d => d.Kind == "StatefulSet").Root, "spec", "replicas"));
        var pods = Enumerable.Range(0, replicas).Select(i => $"oserve-worker-{i}").ToHashSet();
        Assert.All(cluster.Nodes, n => Assert.Contains(n.Name, pods));
        Assert.All(plan.Replicas.SelectMany(r => r.Devices), d => Assert.Contains(d.Split('/')[0], pods));
    }
}
