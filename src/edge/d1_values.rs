//! Values bound to D1 statements. D1 takes JS values; these are the only
//! conversions the stores need (numbers go as f64, absent values as NULL).

use wasm_bindgen::JsValue;

pub fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

pub fn n(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

pub fn opt_s(v: Option<&str>) -> JsValue {
    v.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

pub fn opt_n(v: Option<u64>) -> JsValue {
    v.map(n).unwrap_or(JsValue::NULL)
}
