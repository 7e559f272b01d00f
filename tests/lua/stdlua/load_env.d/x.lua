return X
