#include "h5.h"

#include "asr/core/error.h"

namespace asr::h5 {

std::mutex& global_mutex() {
  static std::mutex m;
  return m;
}

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5dont_atexit();  // must precede every other HDF5 call (h5.h says why)
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

namespace {

herr_t innermost_message(unsigned n, const H5E_error2_t* err, void* out) {
  if (n == 0 && err->desc) *static_cast<std::string*>(out) = err->desc;
  return 0;
}

}  // namespace

std::string error_detail() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_message, &desc);
  // A driver failure reads "... errno = 28, error message = 'No space left on device', ...".
  const std::string key = "error message = '";
  const size_t at = desc.find(key);
  if (at == std::string::npos) return desc;
  const size_t begin = at + key.size();
  return desc.substr(begin, desc.find('\'', begin) - begin);
}

hid_t check(hid_t id, const std::string& file, const std::string& what) {
  if (id >= 0) return id;
  const std::string detail = error_detail();
  throw DataError(file + ": " + what + (detail.empty() ? "" : ": " + detail));
}

Handle create_file(const std::string& path) {
  init_library();
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // The oldest format readers still understand, for any h5py or HDF5 >= 1.8.
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get());
  return Handle(check(f, path, "cannot create HDF5 file"), H5Fclose);
}

Handle open_file(const std::string& path) {
  init_library();
  if (H5Fis_hdf5(path.c_str()) <= 0) throw DataError(path + ": missing, unreadable or not an HDF5 file (corrupt shard?)");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  return Handle(check(f, path, "cannot open HDF5 file (corrupt shard?)"), H5Fclose);
}

namespace {

Handle open_dataset(hid_t file, const std::string& name, const std::string& path) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) throw DataError(path + ": dataset '" + name + "' is missing");
  hid_t d = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  return Handle(check(d, path, "cannot open dataset '" + name + "' (corrupt shard?)"), H5Dclose);
}

int64_t length_of(hid_t dset, const std::string& name, const std::string& path) {
  Handle space(check(H5Dget_space(dset), path, "no dataspace for '" + name + "'"), H5Sclose);
  if (H5Sget_simple_extent_ndims(space.get()) != 1) throw DataError(path + ": dataset '" + name + "' is not 1-D");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  return static_cast<int64_t>(n);
}

template <class T>
std::vector<T> read_all(hid_t file, const std::string& name, hid_t mem_type, const std::string& path) {
  Handle d = open_dataset(file, name, path);
  std::vector<T> out(static_cast<size_t>(length_of(d.get(), name, path)));
  if (!out.empty() && H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw DataError(path + ": cannot read dataset '" + name + "' (corrupt shard?)");
  return out;
}

template <class T>
void write_all(hid_t file, const std::string& name, hid_t file_type, hid_t mem_type, const std::vector<T>& v,
               const std::string& path) {
  hsize_t n = v.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle dcpl = deterministic_dcpl();
  Handle d(check(H5Dcreate2(file, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), path,
                 "cannot create dataset '" + name + "'"),
           H5Dclose);
  if (n > 0) check(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path,
                   "cannot write dataset '" + name + "'");
}

Handle utf8_string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

}  // namespace

Handle deterministic_dcpl() {
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_obj_track_times(dcpl.get(), 0);
  return dcpl;
}

int64_t dataset_length(hid_t file, const std::string& name, const std::string& path) {
  Handle d = open_dataset(file, name, path);
  return length_of(d.get(), name, path);
}

std::vector<int64_t> read_int64(hid_t file, const std::string& name, const std::string& path) {
  return read_all<int64_t>(file, name, H5T_NATIVE_INT64, path);
}
std::vector<int32_t> read_int32(hid_t file, const std::string& name, const std::string& path) {
  return read_all<int32_t>(file, name, H5T_NATIVE_INT32, path);
}
std::vector<double> read_double(hid_t file, const std::string& name, const std::string& path) {
  return read_all<double>(file, name, H5T_NATIVE_DOUBLE, path);
}

std::vector<std::string> read_strings(hid_t file, const std::string& name, const std::string& path) {
  Handle d = open_dataset(file, name, path);
  size_t n = static_cast<size_t>(length_of(d.get(), name, path));
  std::vector<char*> raw(n, nullptr);
  Handle type = utf8_string_type();
  if (n > 0 && H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0)
    throw DataError(path + ": cannot read strings '" + name + "' (corrupt shard?)");
  std::vector<std::string> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = raw[i] ? raw[i] : "";
  if (n > 0) {
    Handle space(H5Dget_space(d.get()), H5Sclose);
    H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, raw.data());
  }
  return out;
}

void read_int16_range(hid_t file, const std::string& name, int64_t begin, int64_t count, int16_t* out,
                      const std::string& path) {
  Handle d = open_dataset(file, name, path);
  if (count <= 0) return;
  Handle space(H5Dget_space(d.get()), H5Sclose);
  hsize_t start = static_cast<hsize_t>(begin), cnt = static_cast<hsize_t>(count);
  if (H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &cnt, nullptr) < 0)
    throw DataError(path + ": bad range in '" + name + "'");
  Handle mem(H5Screate_simple(1, &cnt, nullptr), H5Sclose);
  if (H5Dread(d.get(), H5T_NATIVE_INT16, mem.get(), space.get(), H5P_DEFAULT, out) < 0)
    throw DataError(path + ": cannot read '" + name + "' (corrupt shard?)");
}

int64_t read_int_attribute(hid_t file, const std::string& name, const std::string& path) {
  if (H5Aexists(file, name.c_str()) <= 0) throw DataError(path + ": root attribute '" + name + "' is missing");
  Handle a(check(H5Aopen(file, name.c_str(), H5P_DEFAULT), path, "cannot open attribute '" + name + "'"),
           H5Aclose);
  int64_t v = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) < 0) throw DataError(path + ": cannot read attribute '" + name + "'");
  return v;
}

void write_int64(hid_t file, const std::string& name, const std::vector<int64_t>& v, const std::string& path) {
  write_all(file, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, path);
}
void write_int32(hid_t file, const std::string& name, const std::vector<int32_t>& v, const std::string& path) {
  write_all(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, v, path);
}
void write_double(hid_t file, const std::string& name, const std::vector<double>& v, const std::string& path) {
  write_all(file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, path);
}

void write_strings(hid_t file, const std::string& name, const std::vector<std::string>& v,
                   const std::string& path) {
  std::vector<const char*> ptrs(v.size());
  for (size_t i = 0; i < v.size(); ++i) ptrs[i] = v[i].c_str();
  hsize_t n = v.size();
  Handle type = utf8_string_type();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle dcpl = deterministic_dcpl();
  Handle d(check(H5Dcreate2(file, name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                 path, "cannot create dataset '" + name + "'"),
           H5Dclose);
  if (n > 0) check(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), path,
                   "cannot write strings '" + name + "'");
}

void write_int_attribute(hid_t file, const std::string& name, int64_t value, const std::string& path) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(check(H5Acreate2(file, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                 "cannot create attribute '" + name + "'"),
           H5Aclose);
  check(H5Awrite(a.get(), H5T_NATIVE_INT64, &value), path, "cannot write attribute " + name);
}

void write_string_attribute(hid_t file, const std::string& name, const std::string& value,
                            const std::string& path) {
  Handle type = utf8_string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(check(H5Acreate2(file, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), path,
                 "cannot create attribute '" + name + "'"),
           H5Aclose);
  const char* p = value.c_str();
  check(H5Awrite(a.get(), type.get(), &p), path, "cannot write attribute " + name);
}

}  // namespace asr::h5
