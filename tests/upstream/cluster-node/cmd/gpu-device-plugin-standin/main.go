// Command gpu-device-plugin-standin is a STAND-IN for NVIDIA's k8s-device-plugin, whose Go
// module the proxy refused here (github.com/NVIDIA/k8s-device-plugin@v0.20.0: 403, see
// docs/validation/real-cluster.md). IT IS NOT NVIDIA's PLUGIN.
//
// It speaks the real kubelet device-plugin API (k8s.io/kubelet deviceplugin/v1beta1): it
// registers the resource nvidia.com/gpu with the kubelet, lists one device per GPU and, for
// an allocation, hands the container NVIDIA_VISIBLE_DEVICES=<GPU UUIDs> (what the real
// plugin's default "envvar" strategy does). The GPU then reaches the container only through
// the node's nvidia runtime (runtimeClassName: nvidia) and the CDI spec it reads.
//
// GPUs are listed with `nvidia-smi --query-gpu=uuid`, which exists in the plugin's own
// container only when the nvidia runtime gave it the driver (the real plugin needs NVML
// from there in the same way). What it leaves out: health checks (XID events), MIG,
// time-slicing and the rest of the plugin's config file (of CONFIG_FILE only
// flags.failOnInitError is read, as v0.20.0's manifest carries it there and no longer in the
// FAIL_ON_INIT_ERROR env, which is still honoured), preferred allocation, GPU feature discovery.
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

const (
	resource = "nvidia.com/gpu"
	endpoint = "nvidia-gpu-standin.sock"
)

type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	devices []string
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

func (p *plugin) ListAndWatch(_ *pluginapi.Empty, s pluginapi.DevicePlugin_ListAndWatchServer) error {
	var devs []*pluginapi.Device
	for _, id := range p.devices {
		devs = append(devs, &pluginapi.Device{ID: id, Health: pluginapi.Healthy})
	}
	if err := s.Send(&pluginapi.ListAndWatchResponse{Devices: devs}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	resp := &pluginapi.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		log.Printf("allocate %v", c.DevicesIds)
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{"NVIDIA_VISIBLE_DEVICES": strings.Join(c.DevicesIds, ",")},
		})
	}
	return resp, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

func (p *plugin) GetPreferredAllocation(context.Context, *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	return &pluginapi.PreferredAllocationResponse{}, nil
}

func listGPUs() ([]string, error) {
	out, err := exec.Command("nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var ids []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ids = append(ids, l)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("nvidia-smi lists no GPU")
	}
	return ids, nil
}

func inode(path string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

// serve runs the plugin until the kubelet's socket is replaced (a kubelet restart), then
// returns so that main registers again.
func serve(p *plugin) error {
	sock := filepath.Join(pluginapi.DevicePluginPath, endpoint)
	os.Remove(sock)
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, p)
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient("unix://"+pluginapi.KubeletSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version: pluginapi.Version, Endpoint: endpoint, ResourceName: resource,
		Options: &pluginapi.DevicePluginOptions{},
	}); err != nil {
		return fmt.Errorf("registering with the kubelet: %v", err)
	}
	log.Printf("Registered device plugin for '%s' with Kubelet (%d devices: %v)", resource, len(p.devices), p.devices)
	kubelet := inode(pluginapi.KubeletSocket)
	for inode(pluginapi.KubeletSocket) == kubelet {
		time.Sleep(5 * time.Second)
	}
	log.Printf("the kubelet socket changed (kubelet restart): registering again")
	return nil
}

// keepWaiting says whether the plugin waits instead of exiting when it finds no GPU: the
// config file's flags.failOnInitError (YAML or JSON, written by the gpu_device_plugin role),
// else the FAIL_ON_INIT_ERROR env of older manifests. The real plugin's default is to fail.
func keepWaiting() bool {
	if f := os.Getenv("CONFIG_FILE"); f != "" {
		log.Printf("CONFIG_FILE=%s: only flags.failOnInitError is read (the stand-in has no sharing, MIG or strategy settings)", f)
		if data, err := os.ReadFile(f); err == nil {
			m := regexp.MustCompile(`(?m)^\s*"?failOnInitError"?\s*:\s*(true|false)\b`).FindSubmatch(data)
			if m != nil {
				return string(m[1]) == "false"
			}
		} else {
			log.Printf("cannot read CONFIG_FILE: %v", err)
		}
	}
	return os.Getenv("FAIL_ON_INIT_ERROR") == "false"
}

func main() {
	log.SetPrefix("gpu-device-plugin-standin (STAND-IN, not NVIDIA's k8s-device-plugin): ")
	ids, err := listGPUs()
	if err != nil {
		if keepWaiting() {
			log.Printf("no GPUs: %v; failOnInitError is false: waiting indefinitely", err)
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			<-sig
			return
		}
		log.Fatalf("no GPUs: %v", err)
	}
	p := &plugin{devices: ids}
	for {
		if err := serve(p); err != nil {
			log.Printf("%v; retrying in 5s", err)
			time.Sleep(5 * time.Second)
		}
	}
}
