package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// The subset of Kubernetes objects the manifests use and the test reads.

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type object struct {
	Kind     string `yaml:"kind"`
	Metadata meta   `yaml:"metadata"`
	node     *yaml.Node
	file     string
}

type deployment struct {
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	ServiceAccountName string      `yaml:"serviceAccountName"`
	InitContainers     []container `yaml:"initContainers"`
	Containers         []container `yaml:"containers"`
	Volumes            []volume    `yaml:"volumes"`
}

type container struct {
	Name          string   `yaml:"name"`
	Image         string   `yaml:"image"`
	Command       []string `yaml:"command"`
	Args          []string `yaml:"args"`
	RestartPolicy string   `yaml:"restartPolicy"`
	Env           []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports          []port `yaml:"ports"`
	StartupProbe   *probe `yaml:"startupProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type port struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type keyPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type volume struct {
	Name   string `yaml:"name"`
	Secret *struct {
		SecretName string    `yaml:"secretName"`
		Items      []keyPath `yaml:"items"`
	} `yaml:"secret"`
	ConfigMap *struct {
		Name  string    `yaml:"name"`
		Items []keyPath `yaml:"items"`
	} `yaml:"configMap"`
	EmptyDir  *struct{} `yaml:"emptyDir"`
	Projected *struct {
		Sources []struct {
			ServiceAccountToken *struct {
				Audience string `yaml:"audience"`
				Path     string `yaml:"path"`
			} `yaml:"serviceAccountToken"`
		} `yaml:"sources"`
	} `yaml:"projected"`
}

type generator struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
}

type kustomization struct {
	Namespace string      `yaml:"namespace"`
	Resources []string    `yaml:"resources"`
	Secrets   []generator `yaml:"secretGenerator"`
	ConfigMap []generator `yaml:"configMapGenerator"`
}

// keys are the data keys a generator makes: "key=file" or a file's name.
func (g generator) keys() map[string]bool {
	keys := map[string]bool{}
	for _, f := range g.Files {
		k, _, ok := strings.Cut(f, "=")
		if !ok {
			k = filepath.Base(f)
		}
		keys[k] = true
	}
	return keys
}

// bundle is one kustomization directory: its objects and generated data.
type bundle struct {
	dir     string
	k       kustomization
	objects []object
	secrets map[string]map[string]bool // name -> keys
	configs map[string]map[string]bool
}

func loadBundle(t *testing.T, dir string) *bundle {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{dir: dir, secrets: map[string]map[string]bool{}, configs: map[string]map[string]bool{}}
	if err := yaml.Unmarshal(data, &b.k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	for _, g := range b.k.Secrets {
		b.secrets[g.Name] = g.keys()
	}
	for _, g := range b.k.ConfigMap {
		b.configs[g.Name] = g.keys()
	}
	for _, r := range b.k.Resources {
		b.objects = append(b.objects, loadObjects(t, filepath.Join(dir, r))...)
	}
	return b
}

// loadObjects reads every document of a manifest file.
func loadObjects(t *testing.T, file string) []object {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var objs []object
	d := yaml.NewDecoder(bytes.NewReader(data))
	for {
		n := new(yaml.Node)
		if err := d.Decode(n); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		o := object{node: n, file: file}
		if err := n.Decode(&o); err != nil || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: a document without kind and name (%v)", file, err)
		}
		objs = append(objs, o)
	}
}

// find returns the object of kind and name, or nil.
func (b *bundle) find(kind, name string) *object {
	for i := range b.objects {
		if o := &b.objects[i]; o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

func decode[T any](t *testing.T, o *object) *T {
	t.Helper()
	v := new(T)
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
	return v
}

// probe is an httpGet probe; Port is a number or a port's name.
type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}
