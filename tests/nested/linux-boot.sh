#!/bin/sh
# Linux boot tests, run inside the nested harness's L1 (scripts/nested) where /dev/kvm is a
# hardware-style KVM: ptvmm boots the stock Debian cloud kernel with 1 and 2 vCPUs, and the
# guest's init reports what the kernel sees. Each check prints "ok - name" or "not ok - name";
# the last line is "N passed, M failed" and the exit status is the failure count.
# Expects in the current folder: lib.sh (tests/nested/lib.sh), ptvmm, bzImage, initramfs.cpio.gz.
. ./lib.sh   # check helpers, BOOT_CMDLINE, use_shm_dir, shm_empty (tests/nested/lib.sh)

# run_guest CPUS CMD [PTVMM OPTIONS...]: boots a guest that runs CMD, leaves its console in $out
# and status in $rc.
run_guest() {
  _cpus=$1 _cmd=$2; shift 2
  # A guest that hangs must fail its checks with its console shown, not stall the harness.
  out=$(timeout 120 ./ptvmm --kernel bzImage --initrd initramfs.cpio.gz --memory 256 --cpus "$_cpus" \
        --cmdline "$BOOT_CMDLINE -- $_cmd" "$@" </dev/null 2>&1)
  rc=$?
  echo "$out" | sed 's/^/    | /' | tail -n 25
}

for n in 1 2; do
  t0=$(date +%s)
  run_guest "$n" 'echo "PTVMM-MARK nproc=$(nproc) ioapic=$(grep -c IO-APIC /proc/interrupts) $(dmesg | grep -o "IOAPIC\[0\]: apic_id [0-9]*" | head -n1)"; echo "PTVMM-PCI devices=[ $(ls /sys/bus/pci/devices | tr "\n" " ")] fatal=$(dmesg | grep -c "PCI: [F]atal") conf1=$(dmesg | grep -c "PCI: Using configuration type [1]") root=$(dmesg | grep -c "PCI Root Bridge \[PCI[0]\]") host=$(cat /sys/bus/pci/devices/0000:00:00.0/vendor 2>/dev/null):$(cat /sys/bus/pci/devices/0000:00:00.0/class 2>/dev/null)"'
  echo "    ($n vCPU boot took $(( $(date +%s) - t0 )) s)"
  mark=$(echo "$out" | grep '^PTVMM-MARK' | tail -n1)
  check "boot with $n vCPU: init marker printed" test -n "$mark"
  check "boot with $n vCPU: guest sees $n CPUs" has "$mark" "nproc=$n "
  check "boot with $n vCPU: IOAPIC found via ACPI (MADT)" has "$mark" "IOAPIC[0]: apic_id"
  check "boot with $n vCPU: serial interrupt routed through the IOAPIC" test -n "$(echo "$mark" | grep -E 'ioapic=[1-9]')"
  pci=$(echo "$out" | grep '^PTVMM-PCI' | tail -n1)
  # (The patterns use [x] so they do not match the kernel's echo of this command line.)
  check "boot with $n vCPU: PCI bus 0 found through the ACPI root bridge PCI0" has "$pci" "root=1"
  check "boot with $n vCPU: config mechanism #1 in use" test -n "$(echo "$pci" | grep -E 'conf1=[1-9]')"
  check "boot with $n vCPU: host bridge 0000:00:00.0 listed" has "$pci" " 0000:00:00.0 "
  check "boot with $n vCPU: host bridge is 8086, class 060000" has "$pci" "host=0x8086:0x060000"
  check "boot with $n vCPU: no 'PCI: Fatal' in dmesg" has "$pci" "fatal=0 "
  check "boot with $n vCPU: command ran to completion" has "$out" "PTVMM-CMD-EXIT 0"
  check "boot with $n vCPU: poweroff ends ptvmm with status 0 (got $rc)" test "$rc" -eq 0
done

run_guest 1 'ptvmm-exit 7'
check "debug-exit port: guest status 7 becomes ptvmm's status (got $rc)" test "$rc" -eq 7

run_guest 1 'reboot -f'
check "guest reboot (reboot=k, i8042 reset) ends ptvmm with status 0 (got $rc)" test "$rc" -eq 0

# The ptnet NIC: both PCI functions enumerate with their ids, BARs and MSI-X capability.
use_shm_dir
run_guest 1 'ptvmm-pci-report' --netmap vale0:1
memdev=$(echo "$out" | grep '^PCI .* id=0x1b36:0x000c' | tail -n1)
nic=$(echo "$out" | grep '^PCI .* id=0x1b36:0x000d' | tail -n1)
echo "    memdev: $memdev"
echo "    nic:    $nic"
check "ptnet: memdev 1b36:000c listed, class memory/other" has "$memdev" "class=0x058000"
check "ptnet: memdev has BAR0 (I/O) and BAR1 (memory) assigned" \
  test "$(echo "$memdev" | sed 's/.*bars=\([^ ]*\).*/\1/' | tr ',' '\n' | grep -c .)" -ge 2
check "ptnet: NIC 1b36:000d listed, class ethernet" has "$nic" "class=0x020000"
check "ptnet: NIC has BAR0 (I/O) and BAR2 (MSI-X) assigned" \
  test "$(echo "$nic" | sed 's/.*bars=\([^ ]*\).*/\1/' | tr ',' '\n' | grep -c .)" -ge 2
check "ptnet: NIC has an MSI-X capability" has "$nic" "msix=1"
check "ptnet: no PCI resource errors in dmesg" has "$out" "PCI-ERRORS 0"
check "ptnet: guest with --netmap powers off cleanly (got $rc)" test "$rc" -eq 0
check "ptnet: the VALE port is removed after ptvmm exits" shm_empty

report_and_exit
