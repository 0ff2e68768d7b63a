#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Checks install paths per prefix, builds the Debian package (or takes RESCUEVM_DEB), checks its contents, builds a rescue image from it and boots that image briefly.
#
# Steps:
#  1. meson install paths for prefix /usr and /usr/local (configure only):
#     unit ExecStart and the hook's agent follow sbindir, initramfs-tools files
#     go to /usr/share/initramfs-tools or /etc/initramfs-tools.
#  2. the package: scripts/package into a temporary directory (the whole tree
#     compiles: about 5-10 min here), or RESCUEVM_DEB=/path/rescuevm_V_amd64.deb
#     built earlier (its rescuevm-dbgsym .deb must sit next to it), or the one
#     scripts/test builds in the background into RESCUEVM_PACKAGE_DIR (waited for).
#  3. its contents: version = meson.build's, paths, stripped binary with its
#     debug symbols in -dbgsym, unit ExecStart = the packaged binary, hook and
#     boot script in /usr/share/initramfs-tools, Depends, maintainer scripts
#     that never start the agent, lintian clean (when installed).
#  4. unpacked into a scratch root (never installed on this machine), the rescue
#     image from scripts/build-rescue-image with a test config: lsinitramfs
#     shows the packaged agent, QEMU, firmware, the config and every listed
#     module; this machine's /boot and /etc/initramfs-tools are unchanged.
#  5. the image boots under QEMU (TCG, no KVM): the agent starts from the
#     initramfs and refuses with the KVM check (exit status 3), as it must.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rv_require meson dpkg-deb dpkg-buildpackage mkinitramfs lsinitramfs unmkinitramfs readelf qemu-system-x86_64
src=$RV_SOURCE_ROOT
tmp=$(rv_tmpdir)

# --- 1. install paths from the configured prefix ---------------------------------------------
# installed_path BUILDDIR FILE: where `meson install` puts FILE (a built or source path).
installed_path() {
  meson introspect --installed "$1" | python3 -c '
import json, sys
print(json.load(sys.stdin).get(sys.argv[1], ""))' "$2"
}
for prefix in /usr /usr/local; do
  b=$tmp/meson-${prefix//\//_}
  meson setup --prefix "$prefix" "$b" "$src" >"$tmp/meson-setup.log" 2>&1 ||
    { cat "$tmp/meson-setup.log" >&2; rv_fail "meson setup --prefix $prefix failed"; }
  if [[ $prefix == /usr ]]; then itd=/usr/share/initramfs-tools; else itd=/etc/initramfs-tools; fi
  expect_at() {
    local got
    got=$(installed_path "$b" "$1")
    [[ $got == "$2" ]] || rv_fail "prefix $prefix: $1 installs to '$got', expected $2"
  }
  expect_at "$b/rescuevm" "$prefix/sbin/rescuevm"
  expect_at "$b/units/rescuevm.service" "$prefix/lib/systemd/system/rescuevm.service"
  expect_at "$b/initramfs/rescuevm" "$itd/hooks/rescuevm"
  expect_at "$src/initramfs/scripts/init-premount/rescuevm" "$itd/scripts/init-premount/rescuevm"
  expect_at "$src/units/61-rescuevm-hold-raid-members.rules" "$prefix/lib/udev/rules.d/61-rescuevm-hold-raid-members.rules"
  expect_at "$src/units/rescuevm.tmpfiles" "$prefix/lib/tmpfiles.d/rescuevm.conf"
  grep -qxF "ExecStart=$prefix/sbin/rescuevm run" "$b/units/rescuevm.service" ||
    rv_fail "prefix $prefix: unit says $(grep ^ExecStart= "$b/units/rescuevm.service")"
  grep -qF "agent=\${RESCUEVM_BINARY:-$prefix/sbin/rescuevm}" "$b/initramfs/rescuevm" ||
    rv_fail "prefix $prefix: the hook's default agent is not $prefix/sbin/rescuevm"
  ! grep -n '@[a-z_]*@' "$b/units/rescuevm.service" "$b/initramfs/rescuevm" ||
    rv_fail "prefix $prefix: a placeholder is left in the configured files"
  rm -rf "$b"
done
rv_log "ok: prefix /usr and /usr/local: unit, hook and boot script paths follow the prefix"

# --- 2. the package --------------------------------------------------------------------------
version=$(meson introspect "$src/meson.build" --projectinfo |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
if [[ -n ${RESCUEVM_DEB:-} ]]; then
  deb=$RESCUEVM_DEB
  [[ -f $deb ]] || rv_fail "RESCUEVM_DEB=$deb: no such file"
  rv_log "using $deb"
elif [[ -n ${RESCUEVM_PACKAGE_DIR:-} ]]; then
  # scripts/test started scripts/package in the background into this directory; "done" holds
  # its exit status and build time.
  rv_log "waiting for the package scripts/test builds in the background ($RESCUEVM_PACKAGE_DIR)"
  waited=$SECONDS
  until [[ -f $RESCUEVM_PACKAGE_DIR/done ]]; do
    ((SECONDS - waited < 2000)) || rv_fail "the background package build did not end within 2000 s: $(tail -n 5 "$RESCUEVM_PACKAGE_DIR/package.log" 2>/dev/null)"
    sleep 2
  done
  read -r package_rc package_took <"$RESCUEVM_PACKAGE_DIR/done"
  ((package_rc == 0)) || { tail -n 40 "$RESCUEVM_PACKAGE_DIR/package.log" >&2; rv_fail "scripts/package failed with status $package_rc"; }
  rv_log "ok: scripts/package built it in ${package_took} s in the background (this test waited $((SECONDS - waited)) s for it)"
  deb=$RESCUEVM_PACKAGE_DIR/rescuevm_${version}_amd64.deb
  [[ -f $deb ]] || rv_fail "scripts/package made no $deb: $(ls "$RESCUEVM_PACKAGE_DIR")"
  [[ ! -e $src/obj-x86_64-linux-gnu && ! -e $src/debian/rescuevm ]] || rv_fail "scripts/package left build files in $src"
else
  rv_log "building the package with scripts/package (the whole tree compiles; minutes)"
  started=$SECONDS
  nice -n 10 "$src/scripts/package" --no-lintian "$tmp/deb" >"$tmp/package.log" 2>&1 ||
    { tail -n 40 "$tmp/package.log" >&2; rv_fail "scripts/package failed"; }
  rv_log "ok: scripts/package built it in $((SECONDS - started)) s"
  deb=$tmp/deb/rescuevm_${version}_amd64.deb
  [[ -f $deb ]] || rv_fail "scripts/package made no $deb: $(ls "$tmp/deb")"
  # The tree it was built from stays clean: no build directory appears in it.
  [[ ! -e $src/obj-x86_64-linux-gnu && ! -e $src/debian/rescuevm ]] || rv_fail "scripts/package left build files in $src"
fi
dbgsym=$(dirname "$deb")/rescuevm-dbgsym_$(dpkg-deb -f "$deb" Version)_amd64.deb
[[ -f $dbgsym ]] || rv_fail "no $dbgsym next to $deb"

# --- 3. contents -----------------------------------------------------------------------------
[[ $(dpkg-deb -f "$deb" Version) == "$version" ]] ||
  rv_fail "package version $(dpkg-deb -f "$deb" Version) is not meson.build's $version"
dpkg-deb -c "$deb" | awk '{print $1, $6}' | sed 's| \./| /|' >"$tmp/contents"
mode_of() { awk -v p="$1" '$2 == p {print $1}' "$tmp/contents"; }
for f in /usr/sbin/rescuevm /lib/systemd/system/rescuevm.service /usr/lib/tmpfiles.d/rescuevm.conf \
  /lib/udev/rules.d/61-rescuevm-hold-raid-members.rules \
  /usr/share/initramfs-tools/hooks/rescuevm /usr/share/initramfs-tools/scripts/init-premount/rescuevm \
  /usr/share/doc/rescuevm/examples/rescuevm.toml /usr/share/doc/rescuevm/copyright \
  /usr/share/man/man8/rescuevm.8.gz; do
  [[ -n $(mode_of "$f") ]] || rv_fail "the package lacks $f"
done
for f in /usr/sbin/rescuevm /usr/share/initramfs-tools/hooks/rescuevm \
  /usr/share/initramfs-tools/scripts/init-premount/rescuevm; do
  [[ $(mode_of "$f") == -rwxr-xr-x ]] || rv_fail "$f is $(mode_of "$f") in the package, expected -rwxr-xr-x"
done
if grep -E ' /(usr/local|etc/initramfs-tools)/' "$tmp/contents"; then
  rv_fail "the package installs under /usr/local or /etc/initramfs-tools"
fi

pkgroot=$tmp/root
dpkg-deb -x "$deb" "$pkgroot"
agent=$pkgroot/usr/sbin/rescuevm
sections=$(readelf -S "$agent")
! grep -qE '\.debug_(info|line)' <<<"$sections" || rv_fail "the packaged rescuevm has debug sections"
! grep -qF '.symtab' <<<"$sections" || rv_fail "the packaged rescuevm is not stripped (.symtab present)"
size=$(stat -c %s "$agent")
((size < 10 * 1024 * 1024)) || rv_fail "the packaged rescuevm is $size bytes: not stripped?"
build_id=$(readelf -n "$agent" | sed -n 's/.*Build ID: *//p')
[[ -n $build_id ]] || rv_fail "the packaged rescuevm has no build id"
dbg_contents=$(dpkg-deb -c "$dbgsym")
grep -qF "./usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug" <<<"$dbg_contents" ||
  rv_fail "$dbgsym has no debug file for build id $build_id"
"$agent" --version >"$tmp/version.txt" 2>&1 || rv_fail "the packaged rescuevm does not run: $(cat "$tmp/version.txt")"
grep -qF "$version" "$tmp/version.txt" || rv_fail "rescuevm --version says '$(cat "$tmp/version.txt")', not $version"

unit=$pkgroot/lib/systemd/system/rescuevm.service
grep -qxF 'ExecStart=/usr/sbin/rescuevm run' "$unit" || rv_fail "packaged unit: $(grep ^ExecStart= "$unit")"
grep -qxF 'ConditionKernelCommandLine=rescuevm.enable=1' "$unit" || rv_fail "packaged unit lost its ConditionKernelCommandLine"
sed "s|^ExecStart=/usr/sbin/rescuevm |ExecStart=$agent |" "$unit" >"$tmp/rescuevm.service"
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/rescuevm.service" 2>&1) ||
  { echo "$out" >&2; rv_fail "systemd-analyze verify fails on the packaged unit"; }
! grep -F rescuevm.service <<<"$out" || rv_fail "systemd-analyze verify warns about the packaged unit"
hook=$pkgroot/usr/share/initramfs-tools/hooks/rescuevm
grep -qF 'agent=${RESCUEVM_BINARY:-/usr/sbin/rescuevm}' "$hook" || rv_fail "the packaged hook's default agent is not /usr/sbin/rescuevm"
! grep -n '@[a-z_]*@' "$unit" "$hook" || rv_fail "a placeholder is left in the packaged unit or hook"

# Opt-in: without RESCUEVM_INITRAMFS=y (as on a machine that merely installs the
# package) the hook adds nothing to that machine's initramfs.
mkdir -p "$tmp/optin/dest" "$tmp/optin/conf/conf.d"
printf 'RESCUEVM_COMMAND=run\n' >"$tmp/optin/conf/conf.d/rescuevm"
optin=$(env -u RESCUEVM_INITRAMFS DESTDIR="$tmp/optin/dest" CONFDIR="$tmp/optin/conf" version=$(uname -r) \
  verbose=n RESCUEVM_BINARY="$agent" sh "$hook" 2>&1) || rv_fail "the hook failed without the opt-in: $optin"
[[ -z $(ls -A "$tmp/optin/dest") ]] || rv_fail "the hook added files without RESCUEVM_INITRAMFS=y: $(find "$tmp/optin/dest" | head)"
grep -qF 'RESCUEVM_INITRAMFS=y' <<<"$optin" || rv_fail "the hook does not say why it added nothing: $optin"

depends=$(dpkg-deb -f "$deb" Depends)
for p in qemu-system-x86 qemu-utils ovmf seabios xorriso; do
  [[ ", $depends," == *", $p,"* || ", $depends," == *", $p ("* ]] || rv_fail "Depends lacks $p: $depends"
done
dpkg-deb -e "$deb" "$tmp/control"
# Installing must not start the agent, and an upgrade must not stop or restart it.
if grep -nE 'deb-systemd-invoke[^|]*(start|restart)|systemctl[^|]*(start|restart)' "$tmp/control/postinst" "$tmp/control/preinst" 2>/dev/null; then
  rv_fail "a maintainer script starts or restarts rescuevm"
fi
grep -q "deb-systemd-helper enable 'rescuevm.service'" "$tmp/control/postinst" || rv_fail "postinst does not enable rescuevm.service"
grep -q '"$1" = remove' "$tmp/control/prerm" || rv_fail "prerm does not limit its stop to removal"
if command -v lintian >/dev/null; then
  lint=$(lintian --fail-on error,warning "$deb" 2>&1) || { echo "$lint" >&2; rv_fail "lintian reports errors or warnings"; }
  rv_log "ok: lintian: no errors or warnings"
fi
rv_log "ok: contents: paths, stripped agent ($size bytes) with -dbgsym, unit, hook, Depends, maintainer scripts"

# --- 4. the rescue image ---------------------------------------------------------------------
kver=
for k in /boot/vmlinuz-*; do v=${k#/boot/vmlinuz-}; [[ -f $k && -d /lib/modules/$v ]] && kver=$v; done
[[ -n $kver ]] || rv_fail "no kernel in /boot with modules in /lib/modules: install linux-image-amd64"
fingerprint() { find /boot /etc/initramfs-tools -printf '%p %s %T@ %m\n' 2>/dev/null | sort | sha256sum; }
before=$(fingerprint)
config=$tmp/image.toml
# The stand-in host of step 5: 3 GiB of RAM, no network; the marker proves this file is the one in the image.
cat >"$config" <<'EOF'
# rescuevm package test config (marker 7f3c9a)
[host]
min_memory = "1GiB"
[vm]
memory = "512MiB"
[network]
mode = "none"
EOF
printf '[vm]\nmemory = "plenty"\n' >"$tmp/bad.toml"
if "$src/scripts/build-rescue-image" --deb "$deb" --config "$tmp/bad.toml" "$tmp/bad-image" >"$tmp/bad.log" 2>&1; then
  rv_fail "build-rescue-image accepted an invalid config"
fi
grep -qF 'vm.memory' "$tmp/bad.log" || rv_fail "build-rescue-image's config error does not name the key: $(cat "$tmp/bad.log")"
started=$SECONDS
"$src/scripts/build-rescue-image" --deb "$deb" --config "$config" --kernel-version "$kver" "$tmp/image" \
  >"$tmp/image.log" 2>&1 || { tail -n 30 "$tmp/image.log" >&2; rv_fail "build-rescue-image failed"; }
rv_log "ok: rescue image built in $((SECONDS - started)) s: $(stat -c %s "$tmp/image/initrd.img") bytes"
[[ $(fingerprint) == "$before" ]] || rv_fail "building the image changed /boot or /etc/initramfs-tools"
cmp -s "$tmp/image/vmlinuz" "/boot/vmlinuz-$kver" || rv_fail "image/vmlinuz is not /boot/vmlinuz-$kver"

lsinitramfs "$tmp/image/initrd.img" >"$tmp/list"
missing=()
want() { grep -qxE "(usr/)?${1#/}" "$tmp/list" || missing+=("$1"); }
want /usr/sbin/rescuevm
want /usr/bin/qemu-system-x86_64
want /usr/bin/qemu-img
want /usr/bin/xorriso
want /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so
want /usr/share/seabios/bios-256k.bin
want /usr/share/qemu/kvmvapic.bin
want /usr/lib/ipxe/qemu/efi-virtio.rom
for d in /usr/share/qemu/firmware/*.json; do
  want "$d"
  for f in $(sed -n 's/.*"filename"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$d"); do want "$f"; done
done
want /etc/rescuevm/rescuevm.toml
want /scripts/init-premount/rescuevm
want /conf/conf.d/rescuevm
want /usr/lib/udev/rules.d/61-rescuevm-hold-raid-members.rules
for m in ahci sd_mod nvme megaraid_sas mpt3sas virtio_pci virtio_blk virtio_scsi \
  igb ixgbe i40e ice bnxt_en mlx5_core e1000e r8169 virtio_net ast mgag200 bochs \
  macvtap vhost_net tun kvm kvm_intel kvm_amd; do
  ko=$(modinfo -k "$kver" -n "$m") || rv_fail "kernel $kver has no module $m"
  [[ $ko == "(builtin)" ]] || want "/lib/modules/$kver/${ko#*/lib/modules/"$kver"/}"
done
((${#missing[@]} == 0)) || rv_fail "not in the rescue image: ${missing[*]}"
[[ $(lsinitramfs -l "$tmp/image/initrd.img" | awk '$NF == "scripts/init-premount/rescuevm" {print $1}') == -rwx* ]] ||
  rv_fail "the boot script is not executable in the image"

unmkinitramfs "$tmp/image/initrd.img" "$tmp/unpacked"
img=$tmp/unpacked
[[ -d $tmp/unpacked/main ]] && img=$tmp/unpacked/main   # when an early (microcode) cpio comes first
cmp -s "$img/usr/sbin/rescuevm" "$agent" || rv_fail "the image's agent is not the packaged one"
cmp -s "$img/etc/rescuevm/rescuevm.toml" "$config" || rv_fail "the image's config is not the one given"
grep -qx 'RESCUEVM_INITRAMFS=y' "$img/conf/conf.d/rescuevm" || rv_fail "conf.d/rescuevm lacks RESCUEVM_INITRAMFS=y"
rv_log "ok: image: packaged agent, QEMU, qemu-img, xorriso, firmware, the given config, udev rule, boot script, listed modules"

# --- 5. a short boot -------------------------------------------------------------------------
run=$tmp/boot
mkdir "$run"
truncate -s 64M "$run/disk.img"
qemu-system-x86_64 -accel tcg -cpu qemu64,-svm,-vmx -m 3072 -smp 2 -nodefaults -no-user-config \
  -display none -no-reboot \
  -kernel "$tmp/image/vmlinuz" -initrd "$tmp/image/initrd.img" \
  -append "console=ttyS0,115200 rescuevm.enable=1 rescuevm.stage=initramfs" \
  -blockdev "driver=file,filename=$run/disk.img,node-name=d0" -device virtio-blk-pci,drive=d0 \
  -serial "file:$run/serial.log" </dev/null >"$run/qemu.log" 2>&1 &
qemu=$!
rv_cleanup_kill "$qemu"
rv_wait_for 'boot: rescuevm exited with status' "$run/serial.log" 300 || {
  tr -d '\r' <"$run/serial.log" | tail -n 40 >&2
  rv_fail "the image did not run the agent within 300 s"
}
tr -d '\r' <"$run/serial.log" >"$run/console.txt"
grep -qE "agent: rescuevm $version starting" "$run/console.txt" || rv_fail "no agent start line on the console"
grep -qE 'checks: memory: ok' "$run/console.txt" || rv_fail "the image's config (min_memory 1GiB) was not used"
grep -qE 'checks: kvm: FAILED' "$run/console.txt" || rv_fail "no KVM refusal on a host without KVM"
grep -qE 'boot: rescuevm exited with status 3' "$run/console.txt" || rv_fail "the agent did not refuse with status 3"
kill -0 "$qemu" 2>/dev/null || rv_fail "the stand-in host did not stay up"
rv_pass "package $version: paths, contents, stripped agent, unit, hook; rescue image with agent, QEMU, firmware, modules; boots to the agent"
