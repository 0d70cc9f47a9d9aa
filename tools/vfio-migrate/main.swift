print("vfio-migrate")
