# Sourced by the guest's /init inside /payload (helpers: guest_test, guest_counted, guest_record).
guest_counted vfio-smoke ./vfio-smoke
