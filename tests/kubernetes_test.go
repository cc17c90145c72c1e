package tests

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// docs/kubernetes holds a Dockerfile and manifests that run mysqllogfs beside MySQL in
// Kubernetes. Neither a cluster nor a docker engine runs here, so these tests check what can
// be checked without them: that the manifests are well-formed Kubernetes objects that wire the
// mount the way it works (keys, /dev/fuse, capability, propagation, users, probes, flags the
// binary has), and that the Dockerfile's build line gives a static binary that runs.

// The Kubernetes API fields the manifests may use, by their API names. Decoding is strict, so
// a misspelt or misplaced field fails here, as it would at `kubectl apply`, instead of being
// dropped.
type kubeDoc struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   kubeMeta          `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	Spec       *kubeWorkload     `yaml:"spec"`
}

type kubeMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type kubeWorkload struct {
	Selector *struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	ServiceName          string              `yaml:"serviceName"`
	Replicas             *int                `yaml:"replicas"`
	UpdateStrategy       map[string]any      `yaml:"updateStrategy"`
	Template             kubePodTemplate     `yaml:"template"`
	VolumeClaimTemplates []kubeClaimTemplate `yaml:"volumeClaimTemplates"`
}

type kubePodTemplate struct {
	Metadata kubeMeta `yaml:"metadata"`
	Spec     kubePod  `yaml:"spec"`
}

type kubeClaimTemplate struct {
	Metadata kubeMeta `yaml:"metadata"`
	Spec     struct {
		AccessModes      []string      `yaml:"accessModes"`
		StorageClassName *string       `yaml:"storageClassName"`
		Resources        kubeResources `yaml:"resources"`
	} `yaml:"spec"`
}

type kubePod struct {
	AutomountServiceAccountToken  *bool             `yaml:"automountServiceAccountToken"`
	ServiceAccountName            string            `yaml:"serviceAccountName"`
	NodeSelector                  map[string]string `yaml:"nodeSelector"`
	Tolerations                   []map[string]any  `yaml:"tolerations"`
	HostPID                       bool              `yaml:"hostPID"`
	ShareProcessNamespace         *bool             `yaml:"shareProcessNamespace"`
	TerminationGracePeriodSeconds *int64            `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               *struct {
		RunAsUser           *int64  `yaml:"runAsUser"`
		RunAsGroup          *int64  `yaml:"runAsGroup"`
		RunAsNonRoot        *bool   `yaml:"runAsNonRoot"`
		FSGroup             *int64  `yaml:"fsGroup"`
		FSGroupChangePolicy string  `yaml:"fsGroupChangePolicy"`
		SupplementalGroups  []int64 `yaml:"supplementalGroups"`
	} `yaml:"securityContext"`
	InitContainers []kubeContainer `yaml:"initContainers"`
	Containers     []kubeContainer `yaml:"containers"`
	Volumes        []kubeVolume    `yaml:"volumes"`
}

type kubeContainer struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	RestartPolicy   *string  `yaml:"restartPolicy"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	Env             []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *kubeKeyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *kubeKeyRef `yaml:"configMapKeyRef"`
			FieldRef        *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	SecurityContext *struct {
		Privileged   *bool `yaml:"privileged"`
		Capabilities *struct {
			Add  []string `yaml:"add"`
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		RunAsGroup               *int64 `yaml:"runAsGroup"`
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	StartupProbe   *kubeProbe `yaml:"startupProbe"`
	ReadinessProbe *kubeProbe `yaml:"readinessProbe"`
	LivenessProbe  *kubeProbe `yaml:"livenessProbe"`
	Lifecycle      *struct {
		PostStart *kubeHandler `yaml:"postStart"`
		PreStop   *kubeHandler `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources    kubeResources     `yaml:"resources"`
	VolumeMounts []kubeVolumeMount `yaml:"volumeMounts"`
}

type kubeVolumeMount struct {
	Name             string `yaml:"name"`
	MountPath        string `yaml:"mountPath"`
	SubPath          string `yaml:"subPath"`
	ReadOnly         bool   `yaml:"readOnly"`
	MountPropagation string `yaml:"mountPropagation"`
}

type kubeKeyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional *bool  `yaml:"optional"`
}

type kubeHandler struct {
	Exec *kubeExec `yaml:"exec"`
}

type kubeExec struct {
	Command []string `yaml:"command"`
}

type kubeProbe struct {
	Exec                *kubeExec `yaml:"exec"`
	InitialDelaySeconds int       `yaml:"initialDelaySeconds"`
	PeriodSeconds       int       `yaml:"periodSeconds"`
	TimeoutSeconds      int       `yaml:"timeoutSeconds"`
	SuccessThreshold    int       `yaml:"successThreshold"`
	FailureThreshold    int       `yaml:"failureThreshold"`
}

type kubeResources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

type kubeVolume struct {
	Name     string `yaml:"name"`
	HostPath *struct {
		Path string `yaml:"path"`
		Type string `yaml:"type"`
	} `yaml:"hostPath"`
	Secret *struct {
		SecretName  string `yaml:"secretName"`
		DefaultMode *int   `yaml:"defaultMode"`
		Optional    *bool  `yaml:"optional"`
	} `yaml:"secret"`
	ConfigMap *struct {
		Name        string `yaml:"name"`
		DefaultMode *int   `yaml:"defaultMode"`
		Optional    *bool  `yaml:"optional"`
	} `yaml:"configMap"`
	EmptyDir *struct {
		Medium    string `yaml:"medium"`
		SizeLimit string `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"persistentVolumeClaim"`
}

// kubeAPIVersions are the kinds the manifests may hold.
var kubeAPIVersions = map[string]string{"ConfigMap": "v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Deployment": "apps/v1"}

func TestKubernetesManifests(t *testing.T) {
	files := kubeManifests(t)
	flags := mountFlags(t)
	uid, gid := dockerfileUser(t)
	if problems := manifestProblems(files, flags, uid, gid); len(problems) > 0 {
		t.Fatalf("docs/kubernetes:\n  %s", strings.Join(problems, "\n  "))
	}

	// Each check above can fail: break the manifests one way at a time and see it caught.
	for _, m := range []struct{ file, old, new, want string }{
		{"sidecar.yaml", "            - --foreground\n", "", "--foreground"},
		{"sidecar.yaml", "            - mount\n", "            - mnt\n", `"mount"`},
		{"sidecar.yaml", "--key-dir=/etc/mysqllogfs/keys", "--key-dir=/etc/mysqllogfs", "--key-dir"},
		{"daemonset.yaml", "            - --key-dir=/etc/mysqllogfs/keys\n", "", "no --key-dir"},
		{"sidecar.yaml", "--size-cache=", "--sizes-cache=", "--sizes-cache is not a flag"},
		{"sidecar.yaml", "mountPath: /etc/mysqllogfs/keys\n              readOnly: true", "mountPath: /etc/mysqllogfs/keys", "Secret"},
		{"sidecar.yaml", "defaultMode: 0440", "defaultMode: 0444", "others"},
		{"sidecar.yaml", "mountPath: /var/log/mysql\n              readOnly: true", "mountPath: /var/log/mysql", "source"},
		{"daemonset.yaml", "type: CharDevice", "type: File", "CharDevice"},
		{"sidecar.yaml", "            - name: dev-fuse\n              mountPath: /dev/fuse\n", "", "/dev/fuse"},
		{"sidecar.yaml", `add: ["SYS_ADMIN"]`, `add: ["SYS_PTRACE"]`, "SYS_ADMIN"},
		{"daemonset.yaml", "privileged: true", "privileged: false", "privileged"},
		{"sidecar.yaml", "mountPath: /plain\n              mountPropagation: Bidirectional", "mountPath: /plain\n              mountPropagation: HostToContainer", "Bidirectional"},
		{"daemonset.yaml", "readOnly: true\n              mountPropagation: HostToContainer\n            - name: shipper-config", "readOnly: true\n            - name: shipper-config", "HostToContainer"},
		{"sidecar.yaml", "readOnly: true\n              mountPropagation: HostToContainer", "readOnly: true\n              mountPropagation: None", "HostToContainer"},
		{"sidecar.yaml", "            - /plain/mysql\n", "            - /plain\n", "below"},
		{"daemonset.yaml", "fusermount3 -u -z /var/lib/mysqllogfs/plain", "fusermount3 -u -z /var/lib/mysqllogfs", "dead mount"},
		{"sidecar.yaml", `&& exec mysqllogfs "$@"`, `&& mysqllogfs "$@"`, "exec"},
		{"sidecar.yaml", "runAsUser: 999\n            runAsGroup: 999\n            runAsNonRoot: true\n          startupProbe", "runAsUser: 1000\n            runAsGroup: 999\n            runAsNonRoot: true\n          startupProbe", "passwd"},
		{"daemonset.yaml", "runAsUser: 999\n            runAsGroup: 999\n            runAsNonRoot: true\n            allowPrivilegeEscalation", "runAsUser: 65534\n            runAsGroup: 999\n            runAsNonRoot: true\n            allowPrivilegeEscalation", "only the mount's user"},
		{"sidecar.yaml", "restartPolicy: Always\n", "", "restartPolicy"},
		{"sidecar.yaml", "startupProbe:", "livenessProbe:", "startupProbe"},
		{"daemonset.yaml", `command: ["/bin/sh", "-c", "mountpoint -q /var/lib/mysqllogfs/plain && ls /var/lib/mysqllogfs/plain >/dev/null"]`, `command: ["true"]`, "readinessProbe"},
		{"sidecar.yaml", "limits:\n              memory: 256Mi\n          volumeMounts:\n            - name: logs", "limits: {}\n          volumeMounts:\n            - name: logs", "resources"},
		{"sidecar.yaml", "- name: size-cache\n              mountPath", "- name: sizecache\n              mountPath", "no volume sizecache"},
		{"daemonset.yaml", "mountPath: /var/lib/mysqllogfs\n              mountPropagation: Bidirectional", "mountPath: /var/lib/mysqllogfs\n              mountPropogation: Bidirectional", "mountPropogation"},
		{"daemonset.yaml", "image: cr.fluentbit.io/fluent/fluent-bit:3.2", "image: cr.fluentbit.io/fluent/fluent-bit", "tag"},
		{"sidecar.yaml", "image: mysql:8.4", "image: ''", "no image"},
		{"daemonset.yaml", "matchLabels:\n      app.kubernetes.io/name: mysqllogfs", "matchLabels:\n      app.kubernetes.io/name: other", "selector"},
		{"sidecar.yaml", "metadata:\n  name: mysql-log-shipper", "metadata:\n  name: shipper", "ConfigMap mysql-log-shipper"},
		{"daemonset.yaml", "---\n", "---\n: [\n", "yaml"},
	} {
		broken := maps.Clone(files)
		if !bytes.Contains(broken[m.file], []byte(m.old)) {
			t.Fatalf("the test's mutation of %s no longer applies: %q not found", m.file, m.old)
		}
		broken[m.file] = bytes.Replace(broken[m.file], []byte(m.old), []byte(m.new), 1)
		problems := manifestProblems(broken, flags, uid, gid)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.want) }) {
			t.Errorf("%s with %q made %q: no problem mentions %q; found:\n  %s", m.file, m.old, m.new, m.want, strings.Join(problems, "\n  "))
		}
	}
}

// kubeManifests reads docs/kubernetes/*.yaml.
func kubeManifests(t *testing.T) map[string][]byte {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(Root(), "docs", "kubernetes", "*.yaml"))
	files := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	for _, want := range []string{"daemonset.yaml", "sidecar.yaml"} {
		if files[want] == nil {
			t.Fatalf("docs/kubernetes/%s is missing", want)
		}
	}
	return files
}

// mountFlags reads the flags `mysqllogfs mount --help` lists, each (aliases included) with
// whether it takes a value.
func mountFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(Binary(t), "mount", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("mount --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-") {
			continue
		}
		spec, _, _ := strings.Cut(line, "  ") // the flag column ends at the gap before its usage
		for _, name := range regexp.MustCompile(`(?:^|[\s,\[])(--?[A-Za-z][\w-]*)`).FindAllStringSubmatch(spec, -1) {
			flags[name[1]] = strings.Contains(spec, " value")
		}
	}
	if takes, ok := flags["--foreground"]; !ok || takes || !flags["--key-dir"] {
		t.Fatalf("mount --help not understood: %v\n%s", flags, out)
	}
	return flags
}

// manifestProblems checks the manifests (file name to content) and says what is wrong. flags
// are mount's (with whether each takes a value), uid and gid the user the image runs as.
func manifestProblems(files map[string][]byte, flags map[string]bool, uid, gid int64) []string {
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		var docs []kubeDoc
		dec := yaml.NewDecoder(bytes.NewReader(files[name]))
		dec.KnownFields(true)
		for {
			var doc kubeDoc
			err := dec.Decode(&doc)
			if err == io.EOF {
				break
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", name, err))
				break
			}
			if doc.Kind != "" || doc.APIVersion != "" {
				docs = append(docs, doc)
			}
		}
		report := func(format string, args ...any) {
			problems = append(problems, name+": "+fmt.Sprintf(format, args...))
		}
		configMaps := map[string]bool{}
		for _, doc := range docs {
			if want, ok := kubeAPIVersions[doc.Kind]; !ok || doc.APIVersion != want {
				report("%s %s: apiVersion %q kind %q is not one of %v", doc.Kind, doc.Metadata.Name, doc.APIVersion, doc.Kind, kubeAPIVersions)
			}
			if doc.Metadata.Name == "" {
				report("a %s without a name", doc.Kind)
			}
			if doc.Kind == "ConfigMap" {
				configMaps[doc.Metadata.Name] = true
			}
		}
		mounts := 0
		for _, doc := range docs {
			if doc.Kind == "ConfigMap" {
				if doc.Spec != nil {
					report("ConfigMap %s has a spec", doc.Metadata.Name)
				}
				continue
			}
			if doc.Spec == nil {
				report("%s %s has no spec", doc.Kind, doc.Metadata.Name)
				continue
			}
			where := fmt.Sprintf("%s %s", doc.Kind, doc.Metadata.Name)
			mounts += workloadProblems(doc, configMaps, flags, uid, gid, func(format string, args ...any) {
				report(where+": "+format, args...)
			})
		}
		if mounts == 0 {
			report("no workload runs mysqllogfs")
		}
	}
	return problems
}

// workloadProblems checks one workload and returns how many mysqllogfs containers it runs.
func workloadProblems(doc kubeDoc, configMaps map[string]bool, flags map[string]bool, uid, gid int64, report func(string, ...any)) int {
	spec, pod := doc.Spec, &doc.Spec.Template.Spec
	if doc.Kind != "StatefulSet" && (spec.ServiceName != "" || spec.VolumeClaimTemplates != nil) {
		report("serviceName and volumeClaimTemplates belong to a StatefulSet")
	}
	if doc.Kind == "StatefulSet" && spec.ServiceName == "" {
		report("a StatefulSet needs serviceName")
	}
	if spec.Selector == nil || len(spec.Selector.MatchLabels) == 0 {
		report("no selector.matchLabels")
	} else {
		for k, v := range spec.Selector.MatchLabels {
			if spec.Template.Metadata.Labels[k] != v {
				report("selector %s=%s does not match the template's labels %v", k, v, spec.Template.Metadata.Labels)
			}
		}
	}

	volumes := map[string]*kubeVolume{}
	for i := range pod.Volumes {
		v := &pod.Volumes[i]
		if volumes[v.Name] != nil {
			report("volume %s declared twice", v.Name)
		}
		volumes[v.Name] = v
		sources := 0
		for _, set := range []bool{v.HostPath != nil, v.Secret != nil, v.ConfigMap != nil, v.EmptyDir != nil, v.PersistentVolumeClaim != nil} {
			if set {
				sources++
			}
		}
		if sources != 1 {
			report("volume %s has %d sources, not one", v.Name, sources)
		}
		if v.HostPath != nil && !slices.Contains([]string{"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"}, v.HostPath.Type) {
			report("volume %s: hostPath type %q", v.Name, v.HostPath.Type)
		}
		if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] {
			report("volume %s: ConfigMap %s is not in this file", v.Name, v.ConfigMap.Name)
		}
	}
	for _, c := range spec.VolumeClaimTemplates {
		if volumes[c.Metadata.Name] != nil {
			report("volume %s declared twice", c.Metadata.Name)
		}
		volumes[c.Metadata.Name] = &kubeVolume{Name: c.Metadata.Name}
	}

	// Every container: a pinned image, declared volumes, what the API validates.
	type placed struct {
		c        *kubeContainer
		init     bool // an init container
		lasting  bool // runs alongside the others: a container or a sidecar
		uid, gid *int64
	}
	var all []placed
	for i := range pod.InitContainers {
		c := &pod.InitContainers[i]
		all = append(all, placed{c: c, init: true, lasting: c.RestartPolicy != nil && *c.RestartPolicy == "Always"})
	}
	for i := range pod.Containers {
		all = append(all, placed{c: &pod.Containers[i], lasting: true})
	}
	used, names := map[string]bool{}, map[string]bool{}
	for i := range all {
		p := &all[i]
		c := p.c
		if names[c.Name] || c.Name == "" {
			report("container name %q is empty or used twice", c.Name)
		}
		names[c.Name] = true
		if msg := imageProblem(c.Image); msg != "" {
			report("container %s: %s", c.Name, msg)
		}
		if c.RestartPolicy != nil && (!p.init || *c.RestartPolicy != "Always") {
			report("container %s: restartPolicy %q is only for sidecars (init containers, Always)", c.Name, *c.RestartPolicy)
		}
		if pod.SecurityContext != nil {
			p.uid, p.gid = pod.SecurityContext.RunAsUser, pod.SecurityContext.RunAsGroup
		}
		privileged := false
		if sc := c.SecurityContext; sc != nil {
			p.uid, p.gid = orID(sc.RunAsUser, p.uid), orID(sc.RunAsGroup, p.gid)
			privileged = sc.Privileged != nil && *sc.Privileged
		}
		paths := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if volumes[m.Name] == nil {
				report("container %s mounts %s: no volume %s is declared", c.Name, m.MountPath, m.Name)
			}
			used[m.Name] = true
			if paths[m.MountPath] || !path.IsAbs(m.MountPath) {
				report("container %s: mountPath %q is not absolute or used twice", c.Name, m.MountPath)
			}
			paths[m.MountPath] = true
			switch m.MountPropagation {
			case "", "None", "HostToContainer":
			case "Bidirectional":
				if !privileged {
					report("container %s: Kubernetes allows mountPropagation Bidirectional (%s) only to a privileged container", c.Name, m.Name)
				}
			default:
				report("container %s: mountPropagation %q", c.Name, m.MountPropagation)
			}
		}
	}
	for name := range volumes {
		if !used[name] {
			report("volume %s is mounted by no container", name)
		}
	}

	// The mysqllogfs containers: those of its image given arguments (an init container of the
	// image that only runs a command, as the DaemonSet's directories, is not the mount).
	var ours []int
	for i, p := range all {
		if imageName(p.c.Image) == "mysqllogfs" && (p.lasting || len(p.c.Args) > 0) {
			ours = append(ours, i)
		}
	}
	for _, i := range ours {
		p := all[i]
		c := p.c
		report := func(format string, args ...any) { report("mysqllogfs container "+c.Name+": "+format, args...) }
		// mountOf is the volume mount a path of the container is on.
		mountOf := func(file string) (m kubeVolumeMount, ok bool) {
			for _, vm := range c.VolumeMounts {
				if (file == vm.MountPath || strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")) && len(vm.MountPath) > len(m.MountPath) {
					m, ok = vm, true
				}
			}
			return m, ok
		}

		// What it runs: mysqllogfs itself as PID 1 (SIGTERM unmounts), after clearing a dead
		// mount that a crash of the container before it left on the mountpoint.
		var args []string
		script := ""
		switch {
		case len(c.Command) >= 4 && path.Base(c.Command[0]) == "sh" && c.Command[1] == "-c":
			script = c.Command[2]
			args = append(slices.Clone(c.Command[4:]), c.Args...)
			if !regexp.MustCompile(`\bexec\s+(\S*/)?mysqllogfs\s+"\$@"`).MatchString(script) {
				report(`its shell must exec mysqllogfs "$@", so that mysqllogfs is PID 1 and gets SIGTERM: %q`, script)
			}
		default:
			report("command %q: run mysqllogfs from a shell that first unmounts a dead mount (`fusermount3 -u -z MOUNTPOINT`) and then execs it", c.Command)
			args = c.Args
		}
		if len(args) == 0 || args[0] != "mount" {
			report(`its arguments %q do not start with "mount"`, args)
			continue
		}
		used, positional := map[string][]string{}, []string(nil)
		for j := 1; j < len(args); j++ {
			a := args[j]
			if a == "--" {
				positional = append(positional, args[j+1:]...)
				break
			}
			if !strings.HasPrefix(a, "-") || a == "-" {
				positional = append(positional, a)
				continue
			}
			name, value, hasValue := strings.Cut(a, "=")
			takes, ok := flags[name]
			if !ok {
				report("%s is not a flag of mount (mount --help)", name)
				continue
			}
			if takes && !hasValue && j+1 < len(args) {
				j++
				value = args[j]
			}
			used[name] = append(used[name], value)
		}
		if used["--foreground"] == nil && used["-f"] == nil {
			report("no --foreground: mount would detach and the container end")
		}
		if len(positional) != 2 {
			report("arguments %q: want SOURCE and MOUNTPOINT", positional)
			continue
		}
		source, mountpoint := path.Clean(positional[0]), path.Clean(positional[1])

		// Keys: a Secret, read-only, not readable by others.
		if used["--key-dir"] == nil {
			report("no --key-dir")
		}
		for _, dir := range used["--key-dir"] {
			m, ok := mountOf(path.Clean(dir))
			switch v := volumes[m.Name]; {
			case !ok || m.MountPath != path.Clean(dir) || v == nil || v.Secret == nil:
				report("--key-dir %s is not where a Secret is mounted", dir)
			case !m.ReadOnly:
				report("--key-dir %s: the Secret is not mounted readOnly", dir)
			case v.Secret.DefaultMode != nil && *v.Secret.DefaultMode&0o007 != 0:
				report("--key-dir %s: defaultMode %#o lets others read the keys", dir, *v.Secret.DefaultMode)
			}
		}
		// The source: the logs, read-only.
		if m, ok := mountOf(source); !ok || !m.ReadOnly {
			report("source %s is not on a volume mounted readOnly", source)
		}
		// The mountpoint: below the root of a volume it shares with the node (a dead mount on
		// a volume's root would be what a restarted container is given as that volume).
		mpMount, ok := mountOf(mountpoint)
		switch {
		case !ok || mpMount.MountPropagation != "Bidirectional":
			report("mountpoint %s is not on a volume mounted with mountPropagation Bidirectional", mountpoint)
		case mpMount.MountPath == mountpoint:
			report("mountpoint %s is the root of volume %s: mount below it", mountpoint, mpMount.Name)
		}
		if script != "" && !regexp.MustCompile(`fusermount3\s+-u\s+(-z\s+)?`+regexp.QuoteMeta(mountpoint)+`(\s|;|$)`).MatchString(script) {
			report("its shell does not clear a dead mount on %s (fusermount3 -u -z %s)", mountpoint, mountpoint)
		}
		// /dev/fuse and the capability to mount.
		if m, ok := mountOf("/dev/fuse"); !ok || m.MountPath != "/dev/fuse" || volumes[m.Name] == nil || volumes[m.Name].HostPath == nil ||
			volumes[m.Name].HostPath.Path != "/dev/fuse" || volumes[m.Name].HostPath.Type != "CharDevice" {
			report("/dev/fuse is not the node's (hostPath /dev/fuse, type CharDevice)")
		}
		if sc := c.SecurityContext; sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Add, "SYS_ADMIN") {
			report("securityContext.capabilities.add has no SYS_ADMIN")
		}
		// Its user: one the image has a passwd entry for (fusermount3 needs one).
		if p.uid == nil || *p.uid != uid || p.gid == nil || *p.gid != gid {
			report("runAsUser/runAsGroup %s:%s are not the image's user %d:%d, the one with a passwd entry", idString(p.uid), idString(p.gid), uid, gid)
		}
		// Ready when the mount answers; a sidecar must say so before the containers start.
		probeOK := func(pr *kubeProbe) bool {
			return pr != nil && pr.Exec != nil && strings.Contains(strings.Join(pr.Exec.Command, " "), mountpoint)
		}
		if !probeOK(c.ReadinessProbe) {
			report("no readinessProbe that checks %s", mountpoint)
		}
		if p.init && !probeOK(c.StartupProbe) {
			report("a sidecar without a startupProbe that checks %s: the containers would start before the mount", mountpoint)
		}
		if p.init && !p.lasting {
			report("an init container without restartPolicy Always would keep the pod from starting")
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
			report("resources: want requests of cpu and memory and a memory limit, have %+v", c.Resources)
		}

		// The consumers: whoever else mounts that volume sees the mount through
		// HostToContainer, and gets in: as the mount's user and group, or through
		// --allow-other in a PID namespace the mount sees (it reads their /proc/PID/status).
		consumers := 0
		for j, q := range all {
			if j == i || !q.lasting {
				continue
			}
			for _, m := range q.c.VolumeMounts {
				if m.Name != mpMount.Name {
					continue
				}
				consumers++
				if m.MountPropagation != "HostToContainer" {
					report("container %s mounts %s without mountPropagation HostToContainer: it would not see the mount", q.c.Name, m.Name)
				}
				sameUser := q.uid != nil && p.uid != nil && *q.uid == *p.uid && q.gid != nil && p.gid != nil && *q.gid == *p.gid
				sharedPIDs := pod.HostPID || pod.ShareProcessNamespace != nil && *pod.ShareProcessNamespace
				if !sameUser && (used["--allow-other"] == nil || !sharedPIDs) {
					report("container %s runs as %s:%s: only the mount's user %s:%s gets in (else --allow-other and a shared PID namespace)", q.c.Name, idString(q.uid), idString(q.gid), idString(p.uid), idString(p.gid))
				}
			}
		}
		if consumers == 0 {
			report("no other container reads the mount (volume %s)", mpMount.Name)
		}
	}
	return len(ours)
}

func orID(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

func idString(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}

// imageName is an image reference's last path element without tag or digest.
func imageName(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	name := path.Base(ref)
	name, _, _ = strings.Cut(name, ":")
	return name
}

// imageProblem says what is wrong with an image reference: missing, or not pinned.
func imageProblem(ref string) string {
	if ref == "" {
		return "no image"
	}
	if strings.Contains(ref, "@sha256:") {
		return ""
	}
	if _, tag, ok := strings.Cut(path.Base(ref), ":"); !ok || tag == "" || tag == "latest" {
		return fmt.Sprintf("image %s has no tag (or latest)", ref)
	}
	return ""
}

// dockerfileInstructions returns the Dockerfile's instructions, continuation lines joined and
// comments left out, and its lines as they are.
func dockerfileInstructions(t *testing.T) (instructions, lines []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(), "docs", "kubernetes", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	current := ""
	scanner := bufio.NewScanner(bytes.NewReader(b))
	for scanner.Scan() {
		line := scanner.Text()
		lines = append(lines, line)
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			current += body + " "
			continue
		}
		instructions = append(instructions, current+trimmed)
		current = ""
	}
	return instructions, lines
}

// dockerfileUser is the final stage's USER, its ARG defaults expanded, which must be a user
// the stage creates.
func dockerfileUser(t *testing.T) (uid, gid int64) {
	t.Helper()
	instructions, _ := dockerfileInstructions(t)
	args := map[string]string{}
	user, useradd := "", ""
	for _, in := range instructions {
		keyword, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(keyword) {
		case "FROM":
			args, user, useradd = map[string]string{}, "", ""
		case "ARG":
			if name, value, ok := strings.Cut(rest, "="); ok {
				args[name] = value
			}
		case "USER":
			user = rest
		case "RUN":
			if i := strings.Index(rest, "useradd"); i >= 0 {
				useradd = rest[i:]
			}
		}
	}
	expand := func(s string) string { return os.Expand(s, func(k string) string { return args[k] }) }
	u, g, _ := strings.Cut(expand(user), ":")
	uid, err1 := strconv.ParseInt(u, 10, 64)
	gid, err2 := strconv.ParseInt(g, 10, 64)
	if err1 != nil || err2 != nil || uid == 0 {
		t.Fatalf("Dockerfile: the final stage's USER %q is not a numeric uid:gid other than root", user)
	}
	if !regexp.MustCompile(`--uid\s+"?` + strconv.FormatInt(uid, 10) + `"?\s`).MatchString(expand(strings.ReplaceAll(useradd, `"`, ""))) {
		t.Fatalf("Dockerfile: the final stage creates no user %d (useradd --uid), which fusermount3 needs: %q", uid, useradd)
	}
	return uid, gid
}

func TestDockerfileBuildsTheBinary(t *testing.T) {
	instructions, lines := dockerfileInstructions(t)

	// The stages: Go of go.mod's release, then Debian with fusermount3 as a user.
	var froms []string
	for _, in := range instructions {
		if rest, ok := strings.CutPrefix(in, "FROM "); ok {
			froms = append(froms, rest)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(Root(), "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if len(froms) != 2 || goVersion == nil || froms[0] != "golang:"+string(goVersion[1])+" AS build" || froms[1] != "debian:bookworm-slim" {
		t.Fatalf("Dockerfile stages %q: want golang:%s AS build, then debian:bookworm-slim", froms, goVersion)
	}
	final := strings.Join(instructions[slices.IndexFunc(instructions, func(s string) bool { return s == "FROM debian:bookworm-slim" }):], "\n")
	for _, want := range []string{"fuse3", "user_allow_other", "/etc/mtab"} {
		if !strings.Contains(final, want) {
			t.Errorf("Dockerfile's final stage does not mention %s", want)
		}
	}
	dockerfileUser(t)

	// The build line, on one line, run here as it stands.
	var build []string
	for _, line := range lines {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			build = append(build, line)
		}
	}
	if len(build) != 1 || strings.HasSuffix(build[0], `\`) {
		t.Fatalf("Dockerfile: want one RUN line with go build, whole on its line; have %q", build)
	}
	words, err := shellWords(strings.TrimPrefix(build[0], "RUN "))
	if err != nil {
		t.Fatalf("%s: %v", build[0], err)
	}
	var env []string
	for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
		env, words = append(env, words[0]), words[1:]
	}
	out := slices.Index(words, "-o")
	if !slices.Contains(env, "CGO_ENABLED=0") || len(words) < 3 || words[0] != "go" || words[1] != "build" ||
		!slices.Contains(words, "-trimpath") || !slices.Contains(words, "-ldflags=-s -w") ||
		out < 0 || out+1 >= len(words) || words[len(words)-1] != "./cmd/mysqllogfs" {
		t.Fatalf("Dockerfile build line %q: want CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o PATH ./cmd/mysqllogfs", build[0])
	}
	if !strings.Contains(final, "COPY --from=build "+words[out+1]+" ") {
		t.Errorf("Dockerfile's final stage does not copy the build's %s", words[out+1])
	}
	bin := filepath.Join(t.TempDir(), "mysqllogfs")
	words[out+1] = bin
	cmd := exec.Command(words[0], words[1:]...)
	cmd.Dir = Root()
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, output)
	}
	t.Logf("built in %v: %s %s", time.Since(start).Round(time.Millisecond), strings.Join(env, " "), strings.Join(words, " "))

	// It runs.
	if output, err := exec.Command(bin, "mount", "--help").CombinedOutput(); err != nil || !strings.Contains(string(output), "--key-dir") {
		t.Fatalf("mount --help: %v\n%s", err, output)
	}
	// It is static (no interpreter, no libraries), stripped, and holds no path of this machine.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not static", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs libraries %q (%v)", libs, err)
	}
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("the binary has section %s: not built with -ldflags='-s -w'", s.Name)
		}
	}
	content, _ := os.ReadFile(bin)
	if bytes.Contains(content, []byte(Root())) {
		t.Errorf("the binary holds the path %s: not built with -trimpath", Root())
	}
}

// shellWords splits a shell command line into words as sh would for these lines: blanks
// separate, single quotes keep everything, double quotes keep all but backslash escapes.
func shellWords(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, word.String()), false
				word.Reset()
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated '")
			}
			word.WriteString(s[i+1 : i+1+end])
			i, inWord = i+1+end, true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				word.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \"")
			}
			inWord = true
		case strings.IndexByte("|&;<>()$`\\*?[", c) >= 0:
			return nil, fmt.Errorf("%q: only plain words and quotes are understood here", c)
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
