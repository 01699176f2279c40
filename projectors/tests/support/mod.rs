#![allow(dead_code)]

pub mod postgres;
pub mod shop;
