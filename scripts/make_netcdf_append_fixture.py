"""A netCDF-4 file written by ventral, then opened for append by netCDF-C (netCDF4-python) —
crates/ventral-neural/tests/fixtures/ventral_then_netcdf_c.nc, read back by
crates/ventral-neural/tests/assembly.rs::a_file_appended_by_netcdf_c_reads_back.

netCDF-C refuses to open files whose groups do not track link creation order for writing
(NC_ECANTWRITE); ventral's vendored hdf5-writer tracks it (vendor/README.md).
    ventral stimuli --out /tmp/stim --num-images 200
    ventral neural-synth --stimuli /tmp/stim --out /tmp/rec.nc --num-stimuli 40 --repetitions 2 \
        --sites 3 --bins 70:90:10
    /work/venv-bs/bin/python scripts/make_netcdf_append_fixture.py /tmp/rec.nc
"""
import shutil
import sys

import netCDF4

OUT = "crates/ventral-neural/tests/fixtures/ventral_then_netcdf_c.nc"
shutil.copyfile(sys.argv[1], OUT)
d = netCDF4.Dataset(OUT, "a")  # raised NC_ECANTWRITE (-103) before the patch
d.setncattr("appended_by", f"netCDF-C {netCDF4.__netcdf4libversion__}")
v = d.createVariable("site_quality", "f8", ("neuroid",))
v[:] = [0.25 * (i + 1) for i in range(len(d.dimensions["neuroid"]))]
d.close()
d = netCDF4.Dataset(OUT)
print(OUT, d.getncattr("appended_by"), d["data"].shape, file=sys.stderr)
