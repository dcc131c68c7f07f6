fn main() {
    println!("bt86");
}
