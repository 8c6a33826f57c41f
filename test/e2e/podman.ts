// Podman as the container engine of the tests and benches (REFERENCES.md: Podman 4.3 on these machines): its
// flags for a store of its own in a temp dir, and an image made offline from Debian's static busybox.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The image podmanImage() makes: busybox with sh and httpd, and /www/health. */
export const BUSYBOX_IMAGE = "localhost/hd-busybox:1";

/** podman's global flags for a store in `dir`: vfs storage, runc (crun fails on hybrid cgroups), file events. */
export function podmanArgs(dir: string): string[] {
  return ["--root", join(dir, "store"), "--runroot", join(dir, "run"), "--storage-driver=vfs", "--runtime", "runc", "--cgroup-manager=cgroupfs", "--events-backend=file"];
}

/** Imports BUSYBOX_IMAGE into the store in `dir`, from a rootfs built there (no registry is reachable). */
export function podmanImage(dir: string): void {
  const root = join(dir, "rootfs");
  mkdirSync(join(root, "bin"), { recursive: true });
  mkdirSync(join(root, "www"), { recursive: true });
  cpSync("/bin/busybox", join(root, "bin", "busybox"));
  symlinkSync("busybox", join(root, "bin", "sh"));
  symlinkSync("busybox", join(root, "bin", "httpd"));
  writeFileSync(join(root, "www", "health"), "ok\n");
  execFileSync("tar", ["-C", root, "-cf", join(dir, "rootfs.tar"), "."]);
  execFileSync("podman", [...podmanArgs(dir), "import", join(dir, "rootfs.tar"), BUSYBOX_IMAGE], { stdio: "ignore" });
}

/** `podman run` flags for a container these machines can run: host networking, ulimits it may set. */
export const RUN_FLAGS = ["--network", "host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

/**
 * Removes the store in `dir` and everything in it, after what may still hold it: processes whose command line names
 * `dir` (conmon, a container's healthcheck, `podman system service`) are killed, and mounts under `dir` (a
 * container's shm, vfs layers) are unmounted, deepest first. A plain rm raced conmon writing its exit files
 * (ENOTEMPTY in CI).
 */
export function removePodmanStore(dir: string): void {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir)) process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone already, or not ours to read
    }
  }
  const mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "").filter((m) => m.startsWith(dir + "/"));
  for (const m of mounts.sort((a, b) => b.length - a.length)) {
    try {
      execFileSync("umount", ["-l", m], { stdio: "ignore" });
    } catch {
      // unmounted with its parent
    }
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 250 });
}
