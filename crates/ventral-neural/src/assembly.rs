//! BrainIO data assemblies: one netCDF-4 file whose data variable (`data`, or
//! `__xarray_dataarray_variable__` for an unnamed xarray DataArray) spans dimensions such as
//! `presentation × neuroid × time_bin`; every other variable along one of those dimensions is a
//! coordinate (`stimulus_id` or legacy `image_id`, `repetition`, `region`, `neuroid_id`,
//! `time_bin_start`, `time_bin_end`, `object_name`, ...). Dimension placeholder variables
//! (named like their dimension) carry no information and are skipped.
//!
//! Written back the way `brainio.packaging.write_netcdf` writes (each coordinate its own
//! variable along its dimension, zlib level 1), so Brain-Score/xarray read what ventral writes.

use std::collections::BTreeMap;
use std::path::Path;

use netcdf_reader::{NcFile, NcType};

use crate::error::{Result, file_err};

/// Values of a coordinate.
#[derive(Debug, Clone, PartialEq)]
pub enum CoordValues {
    Str(Vec<String>),
    Int(Vec<i64>),
    Float(Vec<f64>),
}

impl CoordValues {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            CoordValues::Str(v) => v.len(),
            CoordValues::Int(v) => v.len(),
            CoordValues::Float(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values as strings (numbers formatted).
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            CoordValues::Str(v) => v.clone(),
            CoordValues::Int(v) => v.iter().map(|x| x.to_string()).collect(),
            CoordValues::Float(v) => v.iter().map(|x| x.to_string()).collect(),
        }
    }

    /// Values as f64 (None for strings).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self {
            CoordValues::Str(_) => None,
            CoordValues::Int(v) => Some(v.iter().map(|&x| x as f64).collect()),
            CoordValues::Float(v) => Some(v.clone()),
        }
    }
}

/// A coordinate along one dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Coord {
    pub dim: String,
    pub values: CoordValues,
}

/// A data assembly held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Assembly {
    /// Dimension names of the data, in order.
    pub dims: Vec<String>,
    /// Sizes per dimension.
    pub shape: Vec<usize>,
    /// Values, C order.
    pub data: Vec<f64>,
    /// Coordinates by name.
    pub coords: BTreeMap<String, Coord>,
    /// Global attributes (`identifier`, `stimulus_set_identifier`, ...), as text.
    pub attrs: BTreeMap<String, String>,
}

fn is_integer(t: &NcType) -> bool {
    matches!(
        t,
        NcType::Byte
            | NcType::Short
            | NcType::Int
            | NcType::UByte
            | NcType::UShort
            | NcType::UInt
            | NcType::Int64
            | NcType::UInt64
    )
}

impl Assembly {
    /// Read a BrainIO assembly.
    pub fn read(path: &Path) -> Result<Self> {
        let label = path.display().to_string();
        let f = NcFile::open(path)
            .map_err(|e| file_err(&label, format!("cannot open as netCDF: {e}")))?;
        let vars = f.variables().map_err(|e| file_err(&label, e))?;
        let dim_names: Vec<String> = f
            .dimensions()
            .map_err(|e| file_err(&label, e))?
            .iter()
            .map(|d| d.name.clone())
            .collect();
        let is_placeholder = |name: &str| dim_names.iter().any(|d| d == name);
        let data_var = vars
            .iter()
            .find(|v| v.name() == "data" || v.name() == "__xarray_dataarray_variable__")
            .or_else(|| {
                vars.iter()
                    .filter(|v| !is_placeholder(v.name()) && !v.dimensions().is_empty())
                    .max_by_key(|v| v.dimensions().len())
            })
            .ok_or_else(|| {
                file_err(
                    &label,
                    "no data variable (expected 'data' or '__xarray_dataarray_variable__')",
                )
            })?;
        let dims: Vec<String> = data_var
            .dimensions()
            .iter()
            .map(|d| d.name.clone())
            .collect();
        let shape: Vec<usize> = data_var
            .dimensions()
            .iter()
            .map(|d| d.size as usize)
            .collect();
        let arr = f
            .read_variable_as_f64(data_var.name())
            .map_err(|e| file_err(&label, format!("variable '{}': {e}", data_var.name())))?;
        let data: Vec<f64> = arr.iter().copied().collect();
        let mut coords = BTreeMap::new();
        for v in vars.iter() {
            if v.name() == data_var.name() || is_placeholder(v.name()) || v.dimensions().len() != 1
            {
                continue;
            }
            let dim = v.dimensions()[0].name.clone();
            if !dims.contains(&dim) {
                continue;
            }
            let values = match v.dtype() {
                NcType::String | NcType::Char => CoordValues::Str(
                    f.read_variable_as_strings(v.name())
                        .map_err(|e| file_err(&label, format!("coordinate '{}': {e}", v.name())))?,
                ),
                t => {
                    let a = f
                        .read_variable_as_f64(v.name())
                        .map_err(|e| file_err(&label, format!("coordinate '{}': {e}", v.name())))?;
                    let vals: Vec<f64> = a.iter().copied().collect();
                    if is_integer(t) {
                        CoordValues::Int(vals.iter().map(|&x| x as i64).collect())
                    } else {
                        CoordValues::Float(vals)
                    }
                }
            };
            let size = v.dimensions()[0].size as usize;
            if values.len() != size {
                return Err(file_err(
                    &label,
                    format!(
                        "coordinate '{}' has {} values for dimension '{dim}' of size {size}",
                        v.name(),
                        values.len()
                    ),
                ));
            }
            coords.insert(v.name().to_string(), Coord { dim, values });
        }
        let mut attrs = BTreeMap::new();
        if let Ok(ga) = f.global_attributes() {
            for a in ga {
                let text = a
                    .value
                    .as_string()
                    .or_else(|| a.value.as_f64().map(|x| x.to_string()))
                    .unwrap_or_default();
                attrs.insert(a.name.clone(), text);
            }
        }
        Ok(Self {
            dims,
            shape,
            data,
            coords,
            attrs,
        })
    }

    /// Size of dimension `dim`.
    pub fn dim_size(&self, dim: &str) -> Option<usize> {
        self.dims
            .iter()
            .position(|d| d == dim)
            .map(|i| self.shape[i])
    }

    /// Coordinate `name`.
    pub fn coord(&self, name: &str) -> Option<&Coord> {
        self.coords.get(name)
    }

    /// Stimulus ids of the presentations: `stimulus_id`, or legacy `image_id`.
    pub fn stimulus_ids(&self) -> Option<Vec<String>> {
        self.coord("stimulus_id")
            .or_else(|| self.coord("image_id"))
            .filter(|c| c.dim == "presentation")
            .map(|c| c.values.to_strings())
    }

    /// Write as a BrainIO-style netCDF-4 file (atomic): the data variable `data`, every
    /// coordinate its own variable along its dimension, global attributes as text.
    pub fn write(&self, path: &Path) -> Result<()> {
        use netcdf_writer::{NcAttrValue, NcFileBuilder, NcWriteFormat, NcWriteOptions};
        let label = path.display().to_string();
        let e = |x: netcdf_writer::Error| file_err(&label, x);
        let mut b = NcFileBuilder::new();
        let mut dim_ids = Vec::new();
        for (d, &n) in self.dims.iter().zip(&self.shape) {
            dim_ids.push(b.add_dimension(d.clone(), n as u64).map_err(e)?);
        }
        for (k, v) in &self.attrs {
            b.add_attribute(k.clone(), NcAttrValue::Chars(v.clone()))
                .map_err(e)?;
        }
        let data = b.add_variable::<f64>("data", &dim_ids).map_err(e)?;
        b.set_variable_deflate(data, Some(1), false).map_err(e)?;
        // CF/xarray: the data variable lists its coordinates, so xarray (and BrainIO) load them
        // as coordinates rather than data variables.
        let names: Vec<&str> = self.coords.keys().map(String::as_str).collect();
        b.add_variable_attribute(data, "coordinates", NcAttrValue::Chars(names.join(" ")))
            .map_err(e)?;
        b.write_variable(data, &self.data).map_err(e)?;
        for (name, c) in &self.coords {
            let i = self.dims.iter().position(|d| *d == c.dim).ok_or_else(|| {
                file_err(
                    &label,
                    format!(
                        "coordinate '{name}' is along '{}', not a dimension of the data",
                        c.dim
                    ),
                )
            })?;
            let dim = [dim_ids[i]];
            match &c.values {
                CoordValues::Str(v) => {
                    let id = b.add_string_variable(name.clone(), &dim).map_err(e)?;
                    b.write_string_variable(id, v).map_err(e)?;
                }
                CoordValues::Int(v) => {
                    let id = b.add_variable::<i64>(name.clone(), &dim).map_err(e)?;
                    b.write_variable(id, v).map_err(e)?;
                }
                CoordValues::Float(v) => {
                    let id = b.add_variable::<f64>(name.clone(), &dim).map_err(e)?;
                    b.write_variable(id, v).map_err(e)?;
                }
            }
        }
        let (_, bytes) = b
            .to_vec(NcWriteOptions {
                format: NcWriteFormat::Nc4,
            })
            .map_err(e)?;
        ventral_core::write_bytes_atomic(path, &bytes).map_err(|x| file_err(&label, x))
    }
}

/// The TOML that names the axes of plain `.npz` recordings:
///
/// ```toml
/// npz = "responses.npz"          # relative to the TOML
/// data = "responses"             # array of shape [presentation, neuroid(, time_bin)]
/// dims = ["presentation", "neuroid", "time_bin"]
/// identifier = "my.recordings"   # optional
///
/// [coords]                       # coordinate name = "array in the npz"
/// stimulus_id = "stimulus_id"    # the dimension is found by the array's length
/// repetition = "repetition"
/// region = "region"
/// time_bin_start = "t_start"
/// time_bin_end = "t_end"
/// ```
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NpzAxes {
    npz: String,
    data: String,
    dims: Vec<String>,
    identifier: Option<String>,
    #[serde(default)]
    coords: BTreeMap<String, String>,
}

impl Assembly {
    /// Reads `.nc` (BrainIO netCDF-4) or `.toml` (plain `.npz` arrays with their axes named,
    /// see `read_npz_toml`) by extension.
    pub fn read_any(path: &Path) -> Result<Self> {
        if path.extension().is_some_and(|e| e == "toml") {
            Self::read_npz_toml(path)
        } else {
            Self::read(path)
        }
    }

    /// Recordings from plain `.npz` arrays described by a TOML.
    pub fn read_npz_toml(path: &Path) -> Result<Self> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| file_err(&label, e))?;
        let axes: NpzAxes = toml::from_str(&text).map_err(|e| file_err(&label, e))?;
        let npz_path = path.parent().unwrap_or(Path::new(".")).join(&axes.npz);
        let nl = npz_path.display().to_string();
        let mut npz =
            ventral_core::npy::NpzReader::open(&npz_path).map_err(|e| file_err(&nl, e))?;
        let arr = npz.read(&axes.data).map_err(|e| file_err(&nl, e))?;
        if arr.shape.len() != axes.dims.len() {
            return Err(file_err(
                &label,
                format!(
                    "`dims` names {} axes but `{}` in {} has shape {:?}",
                    axes.dims.len(),
                    axes.data,
                    axes.npz,
                    arr.shape
                ),
            ));
        }
        let data = arr
            .to_f64()
            .ok_or_else(|| file_err(&nl, format!("`{}` is not numeric", axes.data)))?;
        let mut coords = BTreeMap::new();
        for (name, key) in &axes.coords {
            let c = npz.read(key).map_err(|e| file_err(&nl, e))?;
            if c.shape.len() != 1 {
                return Err(file_err(
                    &nl,
                    format!(
                        "coordinate array `{key}` must be 1-D, has shape {:?}",
                        c.shape
                    ),
                ));
            }
            let n = c.shape[0];
            let dims: Vec<&String> = axes
                .dims
                .iter()
                .zip(&arr.shape)
                .filter(|(_, s)| **s == n)
                .map(|(d, _)| d)
                .collect();
            let dim = match dims.as_slice() {
                [d] => (*d).clone(),
                [] => {
                    return Err(file_err(
                        &label,
                        format!(
                            "coordinate `{name}` has {n} values, matching no axis of {:?} {:?}",
                            axes.dims, arr.shape
                        ),
                    ));
                }
                _ => {
                    // Ambiguous length: take the axis the coordinate conventionally lives on.
                    let conventional = match name.as_str() {
                        "stimulus_id" | "image_id" | "repetition" | "object_name" => "presentation",
                        "neuroid_id" | "region" => "neuroid",
                        "time_bin_start" | "time_bin_end" => "time_bin",
                        _ => "",
                    };
                    dims.iter()
                        .find(|d| d.as_str() == conventional)
                        .map(|d| (*d).clone())
                        .ok_or_else(|| {
                            file_err(
                                &label,
                                format!(
                                    "coordinate `{name}` ({n} values) matches several axes {dims:?}"
                                ),
                            )
                        })?
                }
            };
            let values = if let Some(s) = c.to_strings() {
                CoordValues::Str(s)
            } else if c.is_float() {
                CoordValues::Float(c.to_f64().unwrap_or_default())
            } else {
                CoordValues::Int(c.to_i64().unwrap_or_default())
            };
            coords.insert(name.clone(), Coord { dim, values });
        }
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "identifier".into(),
            axes.identifier.unwrap_or_else(|| axes.data.clone()),
        );
        Ok(Assembly {
            dims: axes.dims,
            shape: arr.shape,
            data,
            coords,
            attrs,
        })
    }
}

/// Coordinates as text, by name.
pub type StringCoords = BTreeMap<String, Vec<String>>;

/// A one-dimensional BrainIO assembly of strings (a behavioural assembly: one choice per
/// trial along `presentation`): the data values and every string or number coordinate along
/// that dimension, as text.
pub fn read_string_assembly(path: &Path) -> Result<(Vec<String>, StringCoords)> {
    let label = path.display().to_string();
    let f =
        NcFile::open(path).map_err(|e| file_err(&label, format!("cannot open as netCDF: {e}")))?;
    let vars = f.variables().map_err(|e| file_err(&label, e))?;
    let data_var = vars
        .iter()
        .find(|v| v.name() == "data" || v.name() == "__xarray_dataarray_variable__")
        .ok_or_else(|| {
            file_err(
                &label,
                "no data variable (expected 'data' or '__xarray_dataarray_variable__')",
            )
        })?;
    if data_var.dimensions().len() != 1 {
        return Err(file_err(
            &label,
            format!(
                "data variable has {} dimensions; a behavioural assembly has one (presentation)",
                data_var.dimensions().len()
            ),
        ));
    }
    let dim = data_var.dimensions()[0].name.clone();
    let strings = |name: &str, t: &NcType| -> Result<Vec<String>> {
        match t {
            NcType::String | NcType::Char => f
                .read_variable_as_strings(name)
                .map_err(|e| file_err(&label, format!("variable '{name}': {e}"))),
            _ => Ok(f
                .read_variable_as_f64(name)
                .map_err(|e| file_err(&label, format!("variable '{name}': {e}")))?
                .iter()
                .map(|x| x.to_string())
                .collect()),
        }
    };
    let data = strings(data_var.name(), data_var.dtype())?;
    let mut coords = BTreeMap::new();
    for v in vars.iter() {
        if v.name() == data_var.name() || v.name() == dim || v.dimensions().len() != 1 {
            continue;
        }
        if v.dimensions()[0].name != dim {
            continue;
        }
        coords.insert(v.name().to_string(), strings(v.name(), v.dtype())?);
    }
    Ok((data, coords))
}
