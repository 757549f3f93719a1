"""The pause process's mount script: overlays for missing mount points, the root overlay when a
mount point's top-level directory is missing, and the mount table it starts from."""

from __future__ import annotations

from pathlib import Path

from harness import volumes

TABLE = [(20, 1, "/"), (21, 20, "/proc"), (22, 20, "/dev"), (23, 22, "/dev/pts"), (24, 20, "/run/my dir")]


def test_mount_table_reads_ids_parents_and_unescaped_mount_points(tmp_path: Path):
    info = tmp_path / "mountinfo"
    info.write_text("20 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
                    "24 20 0:5 / /run/my\\040dir rw - tmpfs tmpfs rw\n")
    assert volumes.mount_table(str(info)) == [(20, 1, "/"), (24, 20, "/run/my dir")]


def test_existing_top_level_directory_needs_no_root_overlay(tmp_path: Path):
    source = tmp_path / "vol"
    source.mkdir()
    script = volumes.mount_script([volumes.Mount(source, "/etc/emulator-test-missing/x", False)],
                                  tmp_path / "overlays", TABLE)
    assert not any("pivot_root" in line for line in script)
    assert "mount -t overlay overlay -o lowerdir=/etc," in "\n".join(script)


def test_missing_top_level_directory_pivots_into_an_overlay_of_the_root(tmp_path: Path):
    source = tmp_path / "vol"
    source.mkdir()
    scratch = tmp_path / "overlays"
    script = volumes.mount_script([volumes.Mount(source, "/emulator-test-missing/output", False),
                                   volumes.Mount(source, "/dev/emulator-test-missing", False)], scratch, TABLE)
    merged = scratch / "root" / "merged"
    assert script[2] == (f"mount -t overlay overlay -o lowerdir=/,upperdir={scratch}/root/upper,"
                         f"workdir={scratch}/root/work '{merged}'")
    # only the mounts on the root filesystem are bound back: their submounts come along
    assert script[3:6] == [f"mount --rbind '/proc' '{merged}/proc'", f"mount --rbind '/dev' '{merged}/dev'",
                           f"mount --rbind '/run/my dir' '{merged}/run/my dir'"]
    assert script[6:10] == [f"mkdir -p '{merged}/.pod-old-root'", f"cd '{merged}'", "pivot_root . '.pod-old-root'",
                            "cd /"]
    # on the root overlay a mount point is just made; under another mount (/dev) it still needs an
    # overlay of its own, its layers reached through the old root until that is let go at the end
    body = script[10:]
    assert body[0:2] == ["mkdir -p '/emulator-test-missing/output'",
                         "mount --no-canonicalize --bind /proc/self/fd/10 '/emulator-test-missing/output'"]
    assert body[2] == (f"mount -t overlay overlay -o lowerdir=/dev,upperdir=/.pod-old-root{scratch}/dev/upper,"
                       f"workdir=/.pod-old-root{scratch}/dev/work /dev")
    assert body[-2:] == ["umount -l '/.pod-old-root'", "rmdir '/.pod-old-root'"]
    assert (scratch / "root" / "upper").is_dir()
