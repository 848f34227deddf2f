package deploy

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var kubeDirs = []string{filepath.Join(repoRoot, "deploy", "kubernetes"), filepath.Join(repoRoot, "deploy", "kubernetes", "example")}

// clusterScoped kinds carry no namespace.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

// podContainer is a container of a Deployment with its parsed command.
type podContainer struct {
	container
	inv  invocation
	pod  *podSpec
	mnts map[string]string // mount path -> volume name
}

// checkBundle checks every Deployment of b against the binaries and the
// bundle's own objects, and returns its containers.
func checkBundle(t *testing.T, b *bundle, cat *catalog, stages map[string]*stage) map[string][]*podContainer {
	t.Helper()
	pods := map[string][]*podContainer{}
	for i := range b.objects {
		o := &b.objects[i]
		if !clusterScoped[o.Kind] && o.Metadata.Namespace != b.k.Namespace {
			t.Errorf("%s: %s %s is in namespace %q, the kustomization's is %q", o.file, o.Kind, o.Metadata.Name, o.Metadata.Namespace, b.k.Namespace)
		}
		if o.Kind != "Deployment" {
			continue
		}
		d := decode[deployment](t, o)
		pod := &d.Spec.Template.Spec
		where := fmt.Sprintf("%s: Deployment %s", filepath.Base(o.file), o.Metadata.Name)
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match the pod template", where, k, v)
			}
		}
		if b.find("ServiceAccount", pod.ServiceAccountName) == nil {
			t.Errorf("%s: service account %q is not in the bundle", where, pod.ServiceAccountName)
		}
		checkVolumes(t, b, pod, where)
		for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
			pc := checkContainer(t, b, cat, stages, pod, c, where+" container "+c.Name)
			pods[o.Metadata.Name] = append(pods[o.Metadata.Name], pc)
		}
	}
	return pods
}

func checkVolumes(t *testing.T, b *bundle, pod *podSpec, where string) {
	t.Helper()
	for _, v := range pod.Volumes {
		var keys map[string]bool
		var items []keyPath
		switch {
		case v.Secret != nil:
			keys, items = b.secrets[v.Secret.SecretName], v.Secret.Items
		case v.ConfigMap != nil:
			keys, items = b.configs[v.ConfigMap.Name], v.ConfigMap.Items
		default:
			continue
		}
		if keys == nil {
			t.Errorf("%s: volume %s uses a Secret or ConfigMap the kustomization does not generate", where, v.Name)
		}
		for _, it := range items {
			if !keys[it.Key] {
				t.Errorf("%s: volume %s wants key %s, which the generator does not make", where, v.Name, it.Key)
			}
		}
	}
}

func checkContainer(t *testing.T, b *bundle, cat *catalog, stages map[string]*stage, pod *podSpec, c container, where string) *podContainer {
	t.Helper()
	st, err := imageCommand(stages, c.Image)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	argv := c.Command
	switch {
	case argv == nil && c.Args == nil:
		argv = append(slices.Clone(st.entrypoint), st.cmd...)
	case argv == nil:
		argv = append(slices.Clone(st.entrypoint), c.Args...)
	default:
		argv = append(slices.Clone(argv), c.Args...)
	}
	inv, err := cat.parse(argv, where)
	if err != nil {
		t.Error(err)
	}
	pc := &podContainer{container: c, inv: inv, pod: pod, mnts: map[string]string{}}
	for _, m := range c.VolumeMounts {
		if !slices.ContainsFunc(pod.Volumes, func(v volume) bool { return v.Name == m.Name }) {
			t.Errorf("%s: mounts volume %s, which the pod does not have", where, m.Name)
		}
		pc.mnts[m.MountPath] = m.Name
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil && !b.secrets[r.Name][r.Key] {
			t.Errorf("%s: %s comes from Secret %s key %s, which the kustomization does not generate", where, e.Name, r.Name, r.Key)
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil && !b.configs[r.Name][r.Key] {
			t.Errorf("%s: %s comes from ConfigMap %s key %s, which the kustomization does not generate", where, e.Name, r.Name, r.Key)
		}
	}
	if err := cat.checkEnv(env, []string{inv.command}, where); err != nil {
		t.Error(err)
	}
	for _, v := range inv.flags {
		if strings.HasPrefix(v, "/") {
			if err := pc.checkPath(v); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
	}
	return pc
}

// checkPath says whether p is in one of the container's mounts and, where
// the volume names its files (items, a projected token), one of them.
func (pc *podContainer) checkPath(p string) error {
	for mp, name := range pc.mnts {
		if !within(p, mp) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, mp), "/")
		v := pc.volume(name)
		var files []string
		switch {
		case v.Secret != nil:
			files = itemPaths(v.Secret.Items)
		case v.ConfigMap != nil:
			files = itemPaths(v.ConfigMap.Items)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					files = append(files, s.ServiceAccountToken.Path)
				}
			}
		}
		if rel != "" && files != nil && !slices.Contains(files, rel) {
			return fmt.Errorf("%s: volume %s holds %v, not %s", p, name, files, rel)
		}
		return nil
	}
	return fmt.Errorf("%s is in none of the container's mounts", p)
}

func (pc *podContainer) volume(name string) volume {
	for _, v := range pc.pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	return volume{}
}

func itemPaths(items []keyPath) []string {
	if items == nil {
		return nil
	}
	paths := []string{}
	for _, it := range items {
		paths = append(paths, it.Path)
	}
	return paths
}

// runs returns the containers of pods that run command.
func runs(pods map[string][]*podContainer, command string) []*podContainer {
	var out []*podContainer
	for _, cs := range pods {
		for _, c := range cs {
			if c.inv.command == command {
				out = append(out, c)
			}
		}
	}
	return out
}

// hostOf is the host of a URL flag value.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname()
}
