package deploy

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// kubeFixture loads both kustomizations and checks their Deployments
// against the binaries (flags, ROTOR_* variables, paths inside mounts,
// Secrets and ConfigMaps the kustomization generates).
func kubeFixture(t *testing.T) (ca, example *bundle, caPods, examplePods map[string][]*podContainer) {
	t.Helper()
	cat := loadCatalog(t)
	stages, _ := parseDockerfile(t)
	ca, example = loadBundle(t, kubeDirs[0]), loadBundle(t, kubeDirs[1])
	return ca, example, checkBundle(t, ca, cat, stages), checkBundle(t, example, cat, stages)
}

// TestKubernetesCA checks what the issue asks of the CA: two replicas
// behind a Service, and the RBAC for TokenReview.
func TestKubernetesCA(t *testing.T) {
	b, _, pods, _ := kubeFixture(t)
	cas := runs(pods, "rotor-ca serve")
	if len(cas) != 1 {
		t.Fatalf("%d containers run rotor-ca serve, want 1", len(cas))
	}
	caC := cas[0]
	o := b.find("Deployment", "rotor-ca")
	if o == nil {
		t.Fatal("no Deployment rotor-ca")
	}
	d := decode[deployment](t, o)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("rotor-ca replicas = %v, want 2", d.Spec.Replicas)
	}
	if _, ok := caC.inv.flags["tokenreview"]; !ok {
		t.Error("rotor-ca does not verify service-account tokens with --tokenreview")
	}

	svcObj := b.find("Service", "rotor-ca")
	if svcObj == nil {
		t.Fatal("no Service rotor-ca")
	}
	svc := decode[struct {
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				TargetPort any `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}](t, svcObj)
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service rotor-ca selects %s=%s, which the CA's pods do not carry", k, v)
		}
	}
	for _, p := range svc.Spec.Ports {
		name, ok := p.TargetPort.(string)
		if ok && !slices.ContainsFunc(caC.Ports, func(p port) bool { return p.Name == name }) {
			t.Errorf("Service rotor-ca targets port %q, which the container does not name", name)
		}
	}

	bound := false
	for _, o := range b.objects {
		if o.Kind != "ClusterRoleBinding" {
			continue
		}
		crb := decode[struct {
			RoleRef  struct{ Kind, Name string }              `yaml:"roleRef"`
			Subjects []struct{ Kind, Name, Namespace string } `yaml:"subjects"`
		}](t, &o)
		for _, s := range crb.Subjects {
			bound = bound || (crb.RoleRef.Kind == "ClusterRole" && crb.RoleRef.Name == "system:auth-delegator" &&
				s.Kind == "ServiceAccount" && s.Name == d.Spec.Template.Spec.ServiceAccountName && s.Namespace == b.k.Namespace)
		}
	}
	if !bound {
		t.Errorf("no ClusterRoleBinding gives service account %s/%s the role system:auth-delegator (TokenReview)",
			b.k.Namespace, d.Spec.Template.Spec.ServiceAccountName)
	}
}

// TestKubernetesExample checks the example workloads: each pod runs
// rotor-agent as a native sidecar with a projected token for the audience
// the CA checks, reaching the CA by a name its serving certificate
// carries, and shares an emptyDir with the service that uses the files.
func TestKubernetesExample(t *testing.T) {
	_, example, caPods, pods := kubeFixture(t)
	ca := runs(caPods, "rotor-ca serve")[0]
	audience := ca.inv.flags["tokenreview-audience"]
	tlsNames := strings.Split(ca.inv.flags["tls-names"], ",")
	if len(pods) < 2 {
		t.Fatalf("%d example Deployments, want webapp and api", len(pods))
	}
	for name, cs := range pods {
		t.Run(name, func(t *testing.T) {
			var agent *podContainer
			for _, c := range cs {
				if c.inv.command == "rotor-agent" {
					agent = c
				}
			}
			if agent == nil {
				t.Fatal("no rotor-agent container")
			}
			if !slices.ContainsFunc(agent.pod.InitContainers, func(c container) bool { return c.Name == agent.Name && c.RestartPolicy == "Always" }) {
				t.Error("rotor-agent is not a native sidecar (an init container with restartPolicy Always)")
			}
			if host := hostOf(t, agent.inv.flags["ca-url"]); !slices.Contains(tlsNames, host) {
				t.Errorf("the agent reaches the CA as %s, which the CA's --tls-names %v lacks", host, tlsNames)
			}
			tokenVol := agent.volumeAt(agent.inv.flags["token-file"])
			var audiences []string
			if tokenVol.Projected != nil {
				for _, s := range tokenVol.Projected.Sources {
					if s.ServiceAccountToken != nil {
						audiences = append(audiences, s.ServiceAccountToken.Audience)
					}
				}
			}
			if len(audiences) != 1 || audiences[0] != audience || audience != "rotor" {
				t.Errorf("the agent's token has audiences %v; want the one the CA checks (%q), rotor", audiences, audience)
			}
			out := agent.inv.flags["out-dir"]
			if v := agent.volumeAt(out); v.EmptyDir == nil {
				t.Errorf("--out-dir %s is not an emptyDir", out)
			}
			shared := false
			for _, c := range cs {
				shared = shared || (c != agent && c.inv.flags["certs"] == out && c.mnts[out] == agent.mnts[out])
			}
			if !shared {
				t.Errorf("no other container reads the agent's %s through the same volume", out)
			}
			checkAgentProbes(t, agent)
			checkScrape(t, example, name, agent)
		})
	}
}

// volumeAt is the volume mounted where path p lies.
func (pc *podContainer) volumeAt(p string) volume {
	for mp, name := range pc.mnts {
		if within(p, mp) {
			return pc.volume(name)
		}
	}
	return volume{}
}

// checkAgentProbes: the sidecar's readiness (and startup) is its
// certificate, /readyz; its liveness is the process, /livez, so a CA
// outage never restarts it. Every probe reaches the --listen port.
func checkAgentProbes(t *testing.T, agent *podContainer) {
	t.Helper()
	_, listenPort, _ := strings.Cut(agent.inv.flags["listen"], ":")
	for _, p := range []struct {
		kind, path string
		probe      *probe
	}{
		{"startup", "/readyz", agent.StartupProbe},
		{"readiness", "/readyz", agent.ReadinessProbe},
		{"liveness", "/livez", agent.LivenessProbe},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("the agent has no %s probe", p.kind)
			continue
		}
		if got := p.probe.HTTPGet.Path; got != p.path {
			t.Errorf("the agent's %s probe asks %s, want %s", p.kind, got, p.path)
		}
		if got := agent.portNumber(p.probe.HTTPGet.Port); got != listenPort {
			t.Errorf("the agent's %s probe reaches port %s, not --listen's %s", p.kind, got, listenPort)
		}
	}
}

// checkScrape: the Deployment's pods carry Prometheus's scrape annotations
// for the agent's metrics port, which is its --listen port.
func checkScrape(t *testing.T, b *bundle, name string, agent *podContainer) {
	t.Helper()
	o := b.find("Deployment", name)
	if o == nil {
		t.Fatalf("no Deployment %s", name)
	}
	ann := decode[deployment](t, o).Spec.Template.Metadata.Annotations
	_, listenPort, _ := strings.Cut(agent.inv.flags["listen"], ":")
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": listenPort, "prometheus.io/path": "/metrics"}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("pod annotation %s = %q, want %q", k, ann[k], v)
		}
	}
	if agent.portNumber("metrics") != listenPort {
		t.Errorf("the agent declares no port metrics on --listen's %s", listenPort)
	}
}

// portNumber is a probe's or annotation's port as a number: itself, or
// the container port of that name; "" if there is none.
func (pc *podContainer) portNumber(p any) string {
	switch v := p.(type) {
	case int:
		return strconv.Itoa(v)
	case string:
		for _, cp := range pc.Ports {
			if cp.Name == v {
				return strconv.Itoa(cp.ContainerPort)
			}
		}
	}
	return ""
}
